// The page benchmark (scripts/bench-page.sh): the e2e configuration over ./bench, whose specs
// measure and print instead of asserting speeds. Playwright empties its output folder at every
// run: the artifacts go to a folder of their own, so that page-vs-wllama.json (which
// scripts/perf.sh reads) survives the other benchmarks. One worker: a benchmark that shares the
// processor with another measures neither.
import base from './playwright.config.mjs';

export default { ...base, testDir: './bench', outputDir: './bench-results/artifacts', workers: 1 };
