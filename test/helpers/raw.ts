/** The raw peers of the fuzzer, for tests that send what no client library would. */
export * from '../../clients/fuzz/wire.js';
