/** Entry point of the workflow bundle: every workflow type the workers run. */
export { designRun } from './designRun';
export { designCycle } from './designCycle';
