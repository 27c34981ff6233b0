"""Scheduled and background work: when each duty runs, each occurrence once (``duties``), what each does
(``routines``), and the state of rq's queues for the 任务队列 page (``queues``)."""
