# The project's own tests run under Django's test runner (test_project.py), not pytest.
collect_ignore = ["project"]
