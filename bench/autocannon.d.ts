// autocannon ships no types; this is the part of its API the benchmarks use.
declare module 'autocannon' {
  interface Histogram { average: number; p50: number; p99: number; total: number }
  interface Result { requests: Histogram; latency: Histogram; errors: number; timeouts: number; non2xx: number }
  function autocannon(opts: { url: string; connections?: number; duration?: number; pipelining?: number; amount?: number }): Promise<Result>;
  export default autocannon;
}
