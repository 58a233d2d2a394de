package postgres

// PausedWriterTimeout is pausedWriterTimeout, for the tests.
const PausedWriterTimeout = pausedWriterTimeout
