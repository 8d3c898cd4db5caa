"""Runtime. Jobs: the task contract, job records and failure reasons in Redis."""
