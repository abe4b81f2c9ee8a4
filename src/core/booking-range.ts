/**
 * The range of one booking's amounts, enforced by the HTTP schemas and by `Store.book`.
 *
 * Bounded so every sum the store keeps stays an exact integer: far below 2^53, where a
 * double stops counting in ones (2^53 − 1 GPUs + 1 + 1 rounded to 2^53 and left counters
 * at −1 after the rollbacks). A million cores is more than any one host gives one frame.
 */
export const MAX_BOOKING_CORES = 1_000_000;
export const MAX_BOOKING_GPUS = 10_000;
