/** The time histograms' buckets, in seconds: from a cached answer to a slow provider's long reply. */
export const TIME_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];
