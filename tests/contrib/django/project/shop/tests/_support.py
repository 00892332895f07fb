import time


def eventually(condition, timeout=10.0, pause=0.02):
    """Wait until ``condition()`` holds (the machine is shared: generous deadline)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(pause)
