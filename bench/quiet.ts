// Imported first by benchmarks that run the agent in-process: its info lines would drown the results.
process.env.TELEGEN_LOG_LEVEL ??= 'warn';
