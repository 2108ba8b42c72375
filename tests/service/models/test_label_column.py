"""A prediction input that carries the label column is told so, whatever the label's value.

The model of factories.add_model takes x0 and x1; its dataset's label column is y.
"""

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import TypeAdapter

from service.core.media_types import property_names
from service.core.tables import Dataset
from service.models.label_column import RecordsRoute
from tests.service.factories import add_model, assert_problem

LABEL = "'y' is the label column the model predicts, not a feature: drop it"


@pytest.fixture
def model_id(database) -> str:
    return add_model(database)


def predict(client, model_id: str, body: dict):
    return client.post(f"/v1/models/{model_id}/predictions", json=body)


# A string fails the body's validation; a number passes it and reaches the model's check:
# the same answer either way.
@pytest.mark.parametrize("label", ["setosa", 1, 0.5, True, None, [1]])
def test_a_record_with_the_label_column_is_422_saying_to_drop_it(client, model_id, label):
    response = predict(client, model_id, {"records": [{"x0": 1.0, "x1": 2.0, "y": label}]})
    problem = assert_problem(response, 422)
    assert problem["detail"] == f"records.0.y: {LABEL}"
    assert problem["errors"] == [{"field": "records.0.y", "message": LABEL}]


def test_each_record_with_the_label_column_is_named(client, model_id):
    records = [{"x0": 1.0, "x1": 2.0}, {"x0": 1.0, "x1": 2.0, "y": 0}, {"y": 1, "x1": 2, "x0": 1}]
    problem = assert_problem(predict(client, model_id, {"records": records}), 422)
    assert problem["errors"] == [
        {"field": "records.1.y", "message": LABEL},
        {"field": "records.2.y", "message": LABEL},
    ]


def test_the_label_column_and_other_mistakes_are_each_named(client, model_id):
    records = [{"x0": 1.0, "y": 1, "z": 3.0}]
    problem = assert_problem(predict(client, model_id, {"records": records}), 422)
    assert problem["errors"] == [
        {"field": "records.0.y", "message": LABEL},
        {
            "field": "records.0",
            "message": "missing features ['x1'] (null is a missing value); unknown features ['z']",
        },
    ]


def test_a_wrong_feature_value_beside_the_label_keeps_its_own_message(client, model_id):
    records = [{"x0": "1", "x1": 2.0, "y": "setosa"}]
    problem = assert_problem(predict(client, model_id, {"records": records}), 422)
    assert problem["errors"] == [
        {"field": "records.0.y", "message": LABEL},
        {"field": "records.0.x0", "message": "'1' is not a number (a numeric column)"},
    ]


def test_a_row_with_one_value_too_many_suggests_the_label_column(client, model_id):
    problem = assert_problem(predict(client, model_id, {"rows": [[1.0, 2.0, 0.0]]}), 422)
    hint = " (if one is 'y', the label column: drop it)"
    assert problem["detail"] == (
        f"rows.0: has 3 values; expected 2{hint}; the model's features, in order: ['x0', 'x1']"
    )
    assert problem["errors"] == [{"field": "rows.0", "message": f"has 3 values; expected 2{hint}"}]


def test_once_the_dataset_is_deleted_the_label_is_an_unknown_feature(client, database, model_id):
    with database.writes() as session, session.begin():
        session.query(Dataset).delete()
    response = predict(client, model_id, {"records": [{"x0": 1.0, "x1": 2.0, "y": 1}]})
    problem = assert_problem(response, 422)
    assert problem["errors"] == [{"field": "records.0", "message": "unknown features ['y']"}]


def test_an_unknown_model_keeps_the_body_errors(client):
    response = predict(client, "0" * 32, {"records": [{"x0": 1.0, "y": [1]}]})
    problem = assert_problem(response, 422)
    assert problem["errors"] == [
        {"field": "records.0.y", "message": "Input should be a number, text, a boolean or null"}
    ]


def test_every_route_that_takes_records_explains_the_label_column(app):
    taking = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        schema = TypeAdapter(route.body_field.field_info.annotation).json_schema()
        if "records" in property_names(schema):
            assert isinstance(route, RecordsRoute), context.path_format
            taking.append(context.path_format)
    assert sorted(taking) == [
        "/v1/models/{model_id}/predictions",
        "/v1/registered-models/{name}/aliases/{alias}/predictions",
    ]
