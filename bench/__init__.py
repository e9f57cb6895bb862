"""`make bench`: timings, accuracy targets and grading throughput, with the machine."""
