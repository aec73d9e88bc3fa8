// Never run: the bench runtime answers type "noop" at once, to measure the path without a worker.
