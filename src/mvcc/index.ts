export { MvccStore } from './store.js';
export type { MvccStoreOptions } from './store.js';
export * from './types.js';
export * from './errors.js';
export {
  validateRange,
  validatePut,
  validateDeleteRange,
  validateTxn,
  isTxnReadOnly,
  DEFAULT_MAX_TXN_OPS,
} from './validate.js';
export { encodeKeyValue, decodeKeyValue } from './kv_codec.js';
export { revToBytes } from './revision.js';
