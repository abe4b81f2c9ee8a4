import type postgres from 'postgres';

/**
 * The project's own DDL for the subset of a Cuebot (OpenCue) database that cueacct reads and
 * writes, per docs/opencue-schema.md. It exists for tests and `serve --embedded` only: in a real
 * deployment Cuebot owns and migrates these tables and cueacct never creates or alters them.
 *
 * Faithfulness rules: names, types, defaults, uniqueness, foreign keys and the triggers a writer
 * must live with match the contract. Nothing is looser than a real Cuebot database (so code that
 * passes here cannot rely on a missing constraint); where the contract is silent on nullability,
 * columns are NOT NULL as Cuebot declares them. Columns Cuebot has but cueacct never touches are
 * left out.
 *
 * Kept as a string constant (not a .sql file) so it bundles into the single executable.
 */
export const SCHEMA_SQL = `
CREATE TABLE show (
  pk_show             VARCHAR(36) NOT NULL,
  str_name            VARCHAR(36) NOT NULL,
  b_active            BOOLEAN     NOT NULL DEFAULT true,
  b_scheduler_managed BOOLEAN     NOT NULL DEFAULT false,
  CONSTRAINT c_show_pk PRIMARY KEY (pk_show)
);

CREATE TABLE alloc (
  pk_alloc    VARCHAR(36) NOT NULL,
  str_name    VARCHAR(36) NOT NULL,
  pk_facility VARCHAR(36) NOT NULL,
  b_enabled   BOOLEAN     NOT NULL DEFAULT true,
  CONSTRAINT c_alloc_pk PRIMARY KEY (pk_alloc),
  CONSTRAINT c_alloc_name_uniq UNIQUE (str_name)
);

CREATE TABLE subscription (
  pk_subscription VARCHAR(36)   NOT NULL,
  pk_alloc        VARCHAR(36)   NOT NULL,
  pk_show         VARCHAR(36)   NOT NULL,
  int_size        BIGINT        NOT NULL DEFAULT 0,
  int_burst       BIGINT        NOT NULL DEFAULT 0,
  int_cores       INT           NOT NULL DEFAULT 0,
  int_gpus        INT           NOT NULL DEFAULT 0,
  float_tier      NUMERIC(16,2) NOT NULL DEFAULT 0,
  CONSTRAINT c_subscription_pk PRIMARY KEY (pk_subscription),
  CONSTRAINT c_subscription_uk UNIQUE (pk_show, pk_alloc),
  CONSTRAINT c_subscription_pk_alloc_fk FOREIGN KEY (pk_alloc) REFERENCES alloc (pk_alloc),
  CONSTRAINT c_subscription_pk_show_fk FOREIGN KEY (pk_show) REFERENCES show (pk_show)
);
CREATE INDEX i_subscription_pk_alloc ON subscription (pk_alloc);

CREATE TABLE dept (
  pk_dept  VARCHAR(36) NOT NULL,
  str_name VARCHAR(36) NOT NULL,
  CONSTRAINT c_dept_pk PRIMARY KEY (pk_dept)
);

CREATE TABLE folder (
  pk_folder        VARCHAR(36) NOT NULL,
  pk_parent_folder VARCHAR(36),
  pk_show          VARCHAR(36) NOT NULL,
  pk_dept          VARCHAR(36) NOT NULL,
  str_name         VARCHAR(36) NOT NULL,
  CONSTRAINT c_folder_pk PRIMARY KEY (pk_folder),
  CONSTRAINT c_folder_pk_show_fk FOREIGN KEY (pk_show) REFERENCES show (pk_show),
  CONSTRAINT c_folder_pk_dept_fk FOREIGN KEY (pk_dept) REFERENCES dept (pk_dept)
);
CREATE INDEX i_folder_pk_show ON folder (pk_show);
CREATE INDEX i_folder_pk_parent_folder ON folder (pk_parent_folder);

CREATE TABLE folder_resource (
  pk_folder_resource VARCHAR(36)   NOT NULL,
  pk_folder          VARCHAR(36)   NOT NULL,
  int_cores          INT           NOT NULL DEFAULT 0,
  int_max_cores      INT           NOT NULL DEFAULT -1,
  int_min_cores      INT           NOT NULL DEFAULT 0,
  int_gpus           INT           NOT NULL DEFAULT 0,
  int_max_gpus       INT           NOT NULL DEFAULT -1,
  int_min_gpus       INT           NOT NULL DEFAULT 0,
  float_tier         NUMERIC(16,2) NOT NULL DEFAULT 0,
  CONSTRAINT c_folder_resource_pk PRIMARY KEY (pk_folder_resource),
  CONSTRAINT c_folder_resource_uk UNIQUE (pk_folder),
  CONSTRAINT c_folder_resource_pk_folder_fk FOREIGN KEY (pk_folder) REFERENCES folder (pk_folder)
);

CREATE TABLE job (
  pk_job      VARCHAR(36)  NOT NULL,
  pk_folder   VARCHAR(36)  NOT NULL,
  pk_show     VARCHAR(36)  NOT NULL,
  pk_dept     VARCHAR(36)  NOT NULL,
  pk_facility VARCHAR(36)  NOT NULL,
  str_name    VARCHAR(255) NOT NULL,
  str_state   VARCHAR(16)  NOT NULL,
  CONSTRAINT c_job_pk PRIMARY KEY (pk_job),
  CONSTRAINT c_job_pk_folder_fk FOREIGN KEY (pk_folder) REFERENCES folder (pk_folder),
  CONSTRAINT c_job_pk_show_fk FOREIGN KEY (pk_show) REFERENCES show (pk_show),
  CONSTRAINT c_job_pk_dept_fk FOREIGN KEY (pk_dept) REFERENCES dept (pk_dept)
);
CREATE INDEX i_job_pk_folder ON job (pk_folder);
CREATE INDEX i_job_pk_show ON job (pk_show);
CREATE INDEX i_job_str_state ON job (str_state);

CREATE TABLE job_resource (
  pk_job_resource VARCHAR(36)   NOT NULL,
  pk_job          VARCHAR(36)   NOT NULL,
  int_cores       BIGINT        NOT NULL DEFAULT 0,
  int_max_cores   INT           NOT NULL DEFAULT 10000,
  int_min_cores   INT           NOT NULL DEFAULT 100,
  int_gpus        INT           NOT NULL DEFAULT 0,
  int_max_gpus    INT           NOT NULL DEFAULT 100,
  int_min_gpus    INT           NOT NULL DEFAULT 0,
  int_local_cores INT           NOT NULL DEFAULT 0,
  float_tier      NUMERIC(16,2) NOT NULL DEFAULT 0,
  int_priority    INT           NOT NULL DEFAULT 1,
  CONSTRAINT c_job_resource_pk PRIMARY KEY (pk_job_resource),
  CONSTRAINT c_job_resource_uk UNIQUE (pk_job),
  CONSTRAINT c_job_resource_pk_job_fk FOREIGN KEY (pk_job) REFERENCES job (pk_job)
);

CREATE TABLE layer (
  pk_layer VARCHAR(36) NOT NULL,
  pk_job   VARCHAR(36) NOT NULL,
  CONSTRAINT c_layer_pk PRIMARY KEY (pk_layer),
  CONSTRAINT c_layer_pk_job_fk FOREIGN KEY (pk_job) REFERENCES job (pk_job)
);
CREATE INDEX i_layer_pk_job ON layer (pk_job);

CREATE TABLE layer_resource (
  pk_layer_resource VARCHAR(36) NOT NULL,
  pk_layer          VARCHAR(36) NOT NULL,
  pk_job            VARCHAR(36) NOT NULL,
  int_cores         BIGINT      NOT NULL DEFAULT 0,
  int_gpus          INT         NOT NULL DEFAULT 0,
  CONSTRAINT c_layer_resource_pk PRIMARY KEY (pk_layer_resource),
  CONSTRAINT c_layer_resource_pk_layer_fk FOREIGN KEY (pk_layer) REFERENCES layer (pk_layer),
  CONSTRAINT c_layer_resource_pk_job_fk FOREIGN KEY (pk_job) REFERENCES job (pk_job)
);
CREATE INDEX i_layer_resource_pk_layer ON layer_resource (pk_layer);
CREATE INDEX i_layer_resource_pk_job ON layer_resource (pk_job);

CREATE TABLE point (
  pk_point      VARCHAR(36) NOT NULL,
  pk_dept       VARCHAR(36) NOT NULL,
  pk_show       VARCHAR(36) NOT NULL,
  int_cores     INT         NOT NULL DEFAULT 0,
  int_gpus      INT         NOT NULL DEFAULT 0,
  int_min_cores INT         NOT NULL DEFAULT 0,
  int_min_gpus  INT         NOT NULL DEFAULT 0,
  CONSTRAINT c_point_pk PRIMARY KEY (pk_point),
  CONSTRAINT c_point_uk UNIQUE (pk_show, pk_dept)
);

CREATE TABLE host (
  pk_host        VARCHAR(36) NOT NULL,
  pk_alloc       VARCHAR(36) NOT NULL,
  str_name       VARCHAR(30) NOT NULL,
  int_cores      BIGINT      NOT NULL,
  int_cores_idle BIGINT      NOT NULL,
  int_gpus       BIGINT      NOT NULL DEFAULT 0,
  int_gpus_idle  BIGINT      NOT NULL DEFAULT 0,
  CONSTRAINT c_host_pk PRIMARY KEY (pk_host),
  CONSTRAINT c_host_name_uniq UNIQUE (str_name),
  CONSTRAINT c_host_pk_alloc_fk FOREIGN KEY (pk_alloc) REFERENCES alloc (pk_alloc)
);
CREATE INDEX i_host_pk_alloc ON host (pk_alloc);

CREATE TABLE frame (
  pk_frame  VARCHAR(36)  NOT NULL,
  pk_layer  VARCHAR(36)  NOT NULL,
  pk_job    VARCHAR(36)  NOT NULL,
  str_name  VARCHAR(256) NOT NULL,
  str_state VARCHAR(24)  NOT NULL,
  CONSTRAINT c_frame_pk PRIMARY KEY (pk_frame)
);
CREATE INDEX i_frame_pk_layer ON frame (pk_layer);
CREATE INDEX i_frame_pk_job ON frame (pk_job);

CREATE TABLE proc (
  pk_proc            VARCHAR(36) NOT NULL,
  pk_host            VARCHAR(36) NOT NULL,
  pk_job             VARCHAR(36) NOT NULL,
  pk_show            VARCHAR(36) NOT NULL,
  pk_layer           VARCHAR(36) NOT NULL,
  pk_frame           VARCHAR(36) NOT NULL,
  int_cores_reserved BIGINT      NOT NULL,
  int_mem_reserved   BIGINT      NOT NULL,
  int_gpus_reserved  INT         NOT NULL DEFAULT 0,
  b_local            BOOLEAN     NOT NULL DEFAULT false,
  ts_booked          TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
  ts_dispatched      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
  CONSTRAINT c_proc_pk PRIMARY KEY (pk_proc),
  CONSTRAINT c_proc_uk UNIQUE (pk_frame),
  CONSTRAINT c_proc_pk_host_fk FOREIGN KEY (pk_host) REFERENCES host (pk_host),
  CONSTRAINT c_proc_pk_frame_fk FOREIGN KEY (pk_frame) REFERENCES frame (pk_frame)
);
-- The booked sums group procs by job and by host (for the host's allocation); seeding a newly
-- managed show reads its procs.
CREATE INDEX i_proc_pk_job ON proc (pk_job);
CREATE INDEX i_proc_pk_host ON proc (pk_host);
CREATE INDEX i_proc_pk_show ON proc (pk_show);

-- Triggers equivalent to Cuebot's. The two verify triggers fire only when usage grows while the
-- cap column is unchanged, which is why a rewrite that must exceed a lowered cap changes the cap
-- column in the same UPDATE.

CREATE FUNCTION trigger__verify_subscription() RETURNS TRIGGER AS $body$
BEGIN
  IF NEW.int_cores > NEW.int_burst THEN
    RAISE EXCEPTION 'subscription has exceeded burst size';
  END IF;
  RETURN NEW;
END;
$body$ LANGUAGE plpgsql;

CREATE TRIGGER verify_subscription BEFORE UPDATE ON subscription
  FOR EACH ROW
  WHEN (NEW.int_burst = OLD.int_burst AND NEW.int_cores > OLD.int_cores)
  EXECUTE FUNCTION trigger__verify_subscription();

-- Raises even when the max is -1 ("unlimited" to the scheduler): any growth is over -1.
CREATE FUNCTION trigger__verify_job_resources() RETURNS TRIGGER AS $body$
BEGIN
  IF NEW.int_cores > NEW.int_max_cores OR NEW.int_gpus > NEW.int_max_gpus THEN
    RAISE EXCEPTION 'job has exceeded max cores or GPUs';
  END IF;
  RETURN NEW;
END;
$body$ LANGUAGE plpgsql;

CREATE TRIGGER verify_job_resources BEFORE UPDATE ON job_resource
  FOR EACH ROW
  WHEN ((NEW.int_max_cores = OLD.int_max_cores AND NEW.int_cores > OLD.int_cores)
     OR (NEW.int_max_gpus = OLD.int_max_gpus AND NEW.int_gpus > OLD.int_gpus))
  EXECUTE FUNCTION trigger__verify_job_resources();

CREATE FUNCTION trigger__before_insert_proc() RETURNS TRIGGER AS $body$
BEGIN
  IF NEW.int_cores_reserved <= 0 THEN
    RAISE EXCEPTION 'failed to allocate proc, tried to allocate 0 cores';
  END IF;
  RETURN NEW;
END;
$body$ LANGUAGE plpgsql;

CREATE TRIGGER before_insert_proc BEFORE INSERT ON proc
  FOR EACH ROW EXECUTE FUNCTION trigger__before_insert_proc();

CREATE FUNCTION trigger__after_insert_folder() RETURNS TRIGGER AS $body$
BEGIN
  INSERT INTO folder_resource (pk_folder_resource, pk_folder) VALUES (NEW.pk_folder, NEW.pk_folder);
  RETURN NULL;
END;
$body$ LANGUAGE plpgsql;

CREATE TRIGGER after_insert_folder AFTER INSERT ON folder
  FOR EACH ROW EXECUTE FUNCTION trigger__after_insert_folder();

CREATE FUNCTION trigger__after_insert_job() RETURNS TRIGGER AS $body$
BEGIN
  INSERT INTO job_resource (pk_job_resource, pk_job) VALUES (NEW.pk_job, NEW.pk_job);
  RETURN NULL;
END;
$body$ LANGUAGE plpgsql;

CREATE TRIGGER after_insert_job AFTER INSERT ON job
  FOR EACH ROW EXECUTE FUNCTION trigger__after_insert_job();
`;

/** Creates the schema in a fresh database (not idempotent: it fails if the tables exist). */
export async function applySchema(sql: postgres.Sql): Promise<void> {
  // Simple-query protocol: the DDL is many statements, which the extended protocol refuses.
  await sql.unsafe(SCHEMA_SQL).simple();
}
