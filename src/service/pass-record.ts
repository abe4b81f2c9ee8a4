import type { PassStatus } from '../api/types.js';

/** When a loop's last pass ran, how long it took, and how it ended, for `/v1/status`. */
export class PassRecord {
  private at: number | null = null;
  private durationMs: number | null = null;
  private error: string | null = null;

  succeeded(at: number, durationMs: number): void {
    this.at = at;
    this.durationMs = durationMs;
    this.error = null;
  }

  failed(at: number, durationMs: number, error: string): void {
    this.at = at;
    this.durationMs = durationMs;
    this.error = error;
  }

  toJSON(): PassStatus {
    return {
      at: this.at === null ? null : new Date(this.at).toISOString(),
      duration_ms: this.durationMs === null ? null : Math.round(this.durationMs * 10) / 10,
      ok: this.at === null ? null : this.error === null,
      error: this.error,
    };
  }
}
