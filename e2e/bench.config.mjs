// The page benchmark (scripts/bench-page.sh): the e2e configuration over ./bench, whose specs
// measure and print instead of asserting speeds.
import base from './playwright.config.mjs';

export default { ...base, testDir: './bench', outputDir: './bench-results' };
