"""The OpenAPI schema declares every status the API answers, errors in one shape."""

import pytest

pytestmark = pytest.mark.django_db

WEBHOOK = {"200", "202", "400", "401", "404", "413", "415", "429", "503"}
DECLARED = {
    ("get", "/api/v1/alerts/"): {"200", "400", "401", "404"},
    ("get", "/api/v1/alerts/{id}/"): {"200", "401", "404"},
    ("get", "/api/v1/companies/{slug}/dependencies/"): {"200", "401", "404"},
    ("put", "/api/v1/companies/{slug}/dependencies/"): {"200", "400", "401", "403", "404", "415"},
    ("get", "/api/v1/incidents/"): {"200", "400", "401", "404"},
    ("get", "/api/v1/incidents/{id}/"): {"200", "401", "404"},
    ("post", "/api/v1/incidents/{id}/acknowledge/"): {"200", "400", "401", "403", "404"},
    ("post", "/api/v1/token/"): {"200", "400", "415", "429"},
    ("post", "/api/v1/token/revoke/"): {"204", "401"},
    ("post", "/api/webhooks/alerts"): WEBHOOK,
    ("post", "/api/webhooks/alerts/{source}"): WEBHOOK,
}


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_every_operation_declares_its_statuses(schema):
    operations = {
        (method, path): set(operation["responses"])
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert operations == DECLARED


def test_errors_have_the_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"]
    assert set(error["properties"]) == {"error", "message", "fields"}
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    body = response["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/Error"}, (method, path, status)


@pytest.mark.parametrize("path", ["/api/webhooks/alerts", "/api/webhooks/alerts/{source}"])
def test_webhook_declares_its_json_body_with_an_example(schema, path):
    body = schema["paths"][path]["post"]["requestBody"]
    example = body["content"]["application/json"]["examples"]["GenericAlert"]["value"]
    assert example["severity"] == "critical"
