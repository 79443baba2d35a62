"""The test bed: real Kubernetes API server, search nodes and S3 endpoint on loopback.

Used by the test suite's fixtures and by ``make demo``. Every part runs as a child
process on 127.0.0.1 with a free port and a temp dir, and is stopped when done.
"""
