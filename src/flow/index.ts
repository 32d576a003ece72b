/**
 * Demand-driven streams on top of RxJS: the public face of src/flow. Each idea lives in its own
 * file (the protocol in protocol.ts, each operator and source in the file named after it); this
 * barrel only re-exports them, so the rest of rxtrain imports from one place.
 */

export { beforeComplete } from './beforeComplete.js';
export { type ConcatOptions, concatFlows } from './concatFlows.js';
export { consume } from './consume.js';
export { deferFlow } from './deferFlow.js';
export { edge } from './edge.js';
export { type EdgeCapacity, type EdgeStats, edgeStats, itemBytes } from './edgeBuffer.js';
export { type FileBlockOptions, fromFileBlocks } from './fileBlocks.js';
export { fromPush, type Overflow, type PushBufferOptions } from './fromPush.js';
export { mapFlow } from './mapFlow.js';
export { Demand, type Flow, type FlowOperator, Outlet } from './protocol.js';
export { emptyFlow, fromArray, fromReadable } from './sources.js';
export { type PausedReadable, StreamPuller } from './streamPuller.js';
export { type Emitter, type Transformer, transform } from './transform.js';
