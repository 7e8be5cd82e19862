def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fault: breaks a real service (Redis, PostgreSQL, a worker) on purpose"
    )
