"""Scheduled and background work: the duties the scheduler starts (each occurrence once) and the state of rq's queues."""
