"""schemathesis over the service's own OpenAPI schema, every operation: no 5xx, and every
response matches the schema the service publishes. Bounded: a fixed number of examples per
operation, loopback-free (in-process ASGI)."""
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance  # noqa: E402

from tests.serving.serving_helpers import make_client  # noqa: E402


@pytest.fixture()
def fuzz_schema(published):
    store, _, run_dir, _ = published
    with make_client(store, run_dir, admin_api_key="secret") as client:  # runs the lifespan: run loaded
        yield schemathesis.openapi.from_asgi("/openapi.json", client.app)


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_and_no_schema_violations(case):
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance, content_type_conformance])
