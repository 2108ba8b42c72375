"""/v1/datasets on SQLite and PostgreSQL: uploads, de-duplication, limits, pages, deletion."""

import contextlib
import hashlib
import io
import socket
import tempfile
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.app import create_app
from service.core.states import CANCELLING, QUEUED, RUNNING, SUCCEEDED
from service.core.tables import Dataset, DatasetChunk, Job, Model
from service.datasets import service as dataset_service
from service.datasets import storage
from service.datasets.reader import parse_dataset
from service.datasets.uploads import Upload
from tests.service.factories import add_job
from tests.service.live import free_port, service_env, start_api, stop, wait_until_ready

PROBLEM = "application/problem+json"
NOTE = "(row 1 is the first data row)"
CSV = b"a,b,label\n1,2.5,yes\n3,4,no\n5,6,yes\n"


def post_raw(client, body, content_type="text/csv", **params):
    return client.post(
        "/v1/datasets", params=params, content=body, headers={"content-type": content_type}
    )


def post_file(client, body, filename="data.csv", part_type="text/csv", data=None, **params):
    files = {"file": (filename, body, part_type)}
    return client.post("/v1/datasets", params=params, files=files, data=data)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def assert_problem(response, status, detail):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["detail"]) == (status, detail)
    return body


@pytest.fixture
def small_client(settings):
    """A client of an app that takes uploads of at most 1000 bytes."""
    app = create_app(settings.model_copy(update={"max_upload_bytes": 1000}))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def cancer_csv() -> bytes:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame.to_csv(index=False).encode()


# Uploading ------------------------------------------------------------------------------------


def test_upload_csv_as_multipart_file_is_201_with_location(client):
    response = post_file(client, CSV, name="tiny")
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/datasets/{body['id']}"
    assert body["name"] == "tiny"
    assert body["rows"] == 3
    assert body["features"] == ["a", "b"]
    assert (body["label"], body["label_type"]) == ("label", "string")
    assert body["classes"] == ["no", "yes"]
    assert body["class_counts"] == {"no": 1, "yes": 2}
    assert [(c["name"], c["type"], c["role"], c["kind"]) for c in body["schema"]] == [
        ("a", "integer", "feature", "numeric"),
        ("b", "number", "feature", "numeric"),
        ("label", "string", "label", "categorical"),
    ]
    assert body["schema"][1] | {"min": 2.5, "max": 6.0, "mean": 12.5 / 3} == body["schema"][1]
    assert body["warnings"] == []
    assert (body["format"], body["size_bytes"]) == ("csv", len(CSV))
    assert len(body["sha256"]) == 64
    assert body["created_at"].endswith("Z") or "+00:00" in body["created_at"]


@pytest.mark.parametrize("content_type", ["text/csv", "application/csv", "text/csv; charset=utf-8"])
def test_upload_csv_as_raw_body(client, content_type):
    response = post_raw(client, CSV, content_type, name="raw")
    assert response.status_code == 201, response.text
    assert (response.json()["name"], response.json()["format"]) == ("raw", "csv")


@pytest.mark.parametrize(
    "content_type",
    ["application/vnd.apache.parquet", "application/x-parquet", "application/octet-stream"],
)
def test_upload_parquet_as_raw_body(client, content_type):
    table = pa.table({"x1": [0.5, 1.5, 2.5, 3.5], "x2": [1, 2, 3, 4], "y": [0, 1, 0, 1]})
    response = post_raw(client, parquet_bytes(table), content_type)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["format"], body["features"], body["classes"]) == ("parquet", ["x1", "x2"], [0, 1])


@pytest.mark.parametrize(
    "part_type", ["application/vnd.apache.parquet", "application/octet-stream"]
)
def test_upload_parquet_as_multipart_file(client, part_type):
    table = pa.table({"x": [0.5, 1.5, 2.5], "kind": ["cat", "dog", "cat"]})
    response = post_file(client, parquet_bytes(table), "pets.parquet", part_type)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["format"], body["name"], body["classes"]) == ("parquet", "pets", ["cat", "dog"])


def test_octet_stream_without_parquet_magic_reads_as_csv(client):
    response = post_raw(client, CSV, "application/octet-stream")
    assert response.status_code == 201
    assert response.json()["format"] == "csv"


def test_breast_cancer_csv_with_target_label(client, cancer_csv):
    response = post_file(client, cancer_csv, "breast_cancer.csv", name="cancer", label="target")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["rows"], len(body["features"])) == ("cancer", 569, 30)
    assert body["features"][0] == "mean radius"
    assert (body["label"], body["label_type"]) == ("target", "integer")
    assert body["classes"] == [0, 1]
    assert body["class_counts"] == {"0": 212, "1": 357}
    assert client.get(f"/v1/datasets/{body['id']}").json() == body


def test_stored_arrays_round_trip_to_the_parsed_csv(client, app, cancer_csv):
    from sklearn.datasets import load_breast_cancer

    dataset_id = post_raw(client, cancer_csv, label="target").json()["id"]
    with app.state.database.reads() as session:
        dataset = session.get(Dataset, dataset_id)
        X, y_index = storage.load_arrays(session, dataset)
    expected = load_breast_cancer()
    np.testing.assert_array_equal(X, expected.data)
    np.testing.assert_array_equal(storage.labels_of(dataset, y_index), expected.target)


def test_string_labels_round_trip_as_strings(client, app):
    data = b"x,species\n1.5,setosa\n2.5,virginica\n0.5,setosa\n3,versicolor\n"
    body = post_raw(client, data).json()
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
    with app.state.database.reads() as session:
        dataset = session.get(Dataset, body["id"])
        X, y_index = storage.load_arrays(session, dataset)
    assert X.tolist() == [[1.5], [2.5], [0.5], [3.0]]
    assert storage.labels_of(dataset, y_index).tolist() == [
        "setosa",
        "virginica",
        "setosa",
        "versicolor",
    ]


def test_same_content_again_is_200_with_the_same_dataset(client, app):
    first = post_raw(client, CSV, name="first")
    again = post_file(client, CSV, "other.csv", name="second")  # same bytes, other route in
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()  # the existing dataset, its name unchanged
    assert again.headers["location"] == first.headers["location"]
    with app.state.database.reads() as session:
        assert session.scalar(select(func.count()).select_from(Dataset)) == 1


def test_same_content_with_another_label_column_is_a_new_dataset(client):
    data = b"a,b,c\n1,0,5\n2,1,6\n3,0,5\n"
    by_c = post_raw(client, data)
    by_b = post_raw(client, data, label="b")
    assert (by_c.status_code, by_b.status_code) == (201, 201)
    assert by_c.json()["id"] != by_b.json()["id"]
    assert by_c.json()["sha256"] == by_b.json()["sha256"]
    assert (by_b.json()["label"], by_b.json()["features"]) == ("b", ["a", "c"])
    assert post_raw(client, data, label="c").status_code == 200  # naming the default is the same


def test_concurrent_uploads_of_the_same_file_store_it_once(client):
    responses = []

    def upload():
        responses.append(post_raw(client, CSV))

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1


def test_an_upload_racing_an_identical_one_returns_the_one_committed_first(app, settings, tmp_path):
    path = tmp_path / "upload.csv"
    path.write_bytes(CSV)
    upload = Upload(path=path, format="csv", sha256=hashlib.sha256(CSV).hexdigest(), size_bytes=99)
    parsed = parse_dataset(path, format="csv", label=None, settings=settings)
    database, outcome = app.state.database, {}

    def second_upload():
        with database.writes() as session:
            outcome["result"] = dataset_service.create_dataset(
                session=session, upload=upload, name="second", label=None, settings=settings
            )

    with database.writes() as first:
        first.add(
            Dataset(
                name="first",
                label=parsed.label,
                features=parsed.features,
                schema=parsed.schema,
                label_type=parsed.label_type,
                rows=parsed.rows,
                classes=parsed.classes,
                class_counts=parsed.class_counts,
                sha256=upload.sha256,
                format="csv",
                size_bytes=upload.size_bytes,
            )
        )
        first.flush()  # inserted, not committed: the second upload cannot see it yet
        racer = threading.Thread(target=second_upload)
        racer.start()
        time.sleep(0.5)  # PostgreSQL: it inserts and waits on the unique index; SQLite: the lock
        first.commit()
    racer.join(timeout=30)
    dataset, created = outcome["result"]
    assert (dataset.name, created) == ("first", False)


def test_name_and_label_as_multipart_fields(client):
    data = b"a,b,c\n1,0,5\n2,1,6\n"
    response = post_file(client, data, data={"name": "from form", "label": "b"})
    assert response.status_code == 201, response.text
    assert (response.json()["name"], response.json()["label"]) == ("from form", "b")


def test_name_defaults_to_the_file_name_without_folders_or_extension(client):
    response = post_file(client, CSV, filename="../../etc/cancer.csv")
    assert response.json()["name"] == "cancer"


def test_name_defaults_to_dataset_for_a_raw_body(client):
    assert post_raw(client, CSV).json()["name"] == "dataset"


def test_query_and_form_field_that_disagree_are_422(client):
    response = post_file(client, CSV, data={"name": "form"}, name="query")
    body = assert_problem(
        response,
        422,
        "name is given twice, as the query parameter 'query' and the form field 'form'",
    )
    assert body["errors"] == [{"field": "name", "message": body["detail"]}]


def test_label_column_name_longer_than_200_characters_is_422(client):
    data = b"x," + b"y" * 201 + b"\n1,0\n2,1\n"
    assert_problem(
        post_raw(client, data),
        422,
        "the label column's name is 201 characters long; at most 200 are allowed",
    )


def test_a_name_with_a_nul_character_is_422_on_every_database(client):
    assert_problem(post_raw(client, CSV, name="a\x00b"), 422, "name contains a NUL character")


def test_name_longer_than_200_characters_is_422(client):
    response = post_raw(client, CSV, name="n" * 201)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.name"


# Sizes and types -------------------------------------------------------------------------------


def test_content_length_past_the_limit_is_413_before_the_body_is_read(small_client):
    response = post_raw(small_client, b"x,y\n" + b"1,0\n" * 300)
    body = assert_problem(
        response,
        413,
        "uploads are limited to 1,000 bytes (BACKPROP_MAX_UPLOAD_BYTES, max_upload_bytes) "
        "and this one declares 1,204 bytes",
    )
    assert (body["limit"], body["setting"]) == (1000, "max_upload_bytes")


def test_chunked_body_without_content_length_past_the_limit_is_413(small_client):
    sent = []

    def chunks():
        yield b"x,y\n"
        for _ in range(300):
            sent.append(1)
            yield b"1,0\n"

    response = small_client.post(
        "/v1/datasets", content=chunks(), headers={"content-type": "text/csv"}
    )
    assert response.request.headers.get("content-length") is None
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(
        response,
        413,
        "uploads are limited to 1,000 bytes (BACKPROP_MAX_UPLOAD_BYTES, max_upload_bytes) "
        "and this one is larger than that",
    )


def test_multipart_file_past_the_limit_is_413(small_client):
    response = post_file(small_client, b"x,y\n" + b"1,0\n" * 300)
    assert response.status_code == 413
    assert "BACKPROP_MAX_UPLOAD_BYTES" in response.json()["detail"]


def test_a_file_of_exactly_the_limit_is_accepted(small_client):
    data = b"x,y\n" + b"1,0\n" * 248 + b"2,1\n"
    assert len(data) == 1000
    assert post_raw(small_client, data).status_code == 201
    assert post_file(small_client, data, "again.csv").status_code == 200  # the part, not the body


@pytest.mark.parametrize("content_type", ["application/json", "image/png", None])
def test_unsupported_content_type_is_415_listing_the_allowed_ones(client, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    response = client.post("/v1/datasets", content=CSV, headers=headers)
    shown = repr(content_type) if content_type else "'(none)'"
    body = assert_problem(
        response,
        415,
        f"Content-Type {shown} is not supported; send multipart/form-data with a part named "
        '"file", or the file as the body with one of: text/csv, application/csv, '
        "application/vnd.apache.parquet, application/x-parquet, application/octet-stream",
    )
    assert "multipart/form-data" in body["allowed"]


def test_multipart_file_part_of_an_unsupported_type_is_415(client):
    response = post_file(client, b"\x89PNG....", "picture.png", "image/png")
    assert response.status_code == 415
    assert response.json()["detail"].startswith(
        "the \"file\" part's Content-Type 'image/png' is not supported"
    )


def test_empty_body_is_422(client):
    assert_problem(post_raw(client, b""), 422, "the uploaded file is empty")


def test_empty_multipart_file_is_422(client):
    assert_problem(post_file(client, b""), 422, "the uploaded file is empty")


def test_multipart_without_a_file_part_is_422(client):
    response = client.post("/v1/datasets", files={"data": ("x.csv", CSV, "text/csv")})
    assert_problem(response, 422, 'the multipart body has no part named "file"')


def test_truncated_multipart_body_is_400(client):
    body = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n' + CSV
    response = post_raw(client, body, "multipart/form-data; boundary=XyZ")
    assert_problem(response, 400, "the multipart body ended before its closing boundary")


def test_multipart_without_a_boundary_is_400(client):
    response = post_raw(client, CSV, "multipart/form-data")
    assert_problem(response, 400, "a multipart/form-data Content-Type needs a boundary parameter")


def test_temporary_files_are_deleted_after_every_outcome(
    client, small_client, tmp_path, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert post_raw(client, CSV).status_code == 201
    assert post_file(client, b"x,y\ninf,1\n2,0\n").status_code == 422
    assert post_raw(small_client, iter([b"x,y\n", b"1,0\n" * 300])).status_code == 413
    assert post_file(client, b"", "empty.csv").status_code == 422
    assert list(tmp_path.iterdir()) == []


# Content refused, through the API -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "params", "detail"),
    [
        (
            b"town,y\n" + b"Biscoe,0\n" * 16,
            {},
            'column "town" holds one level ("Biscoe") in every row: a column of one level '
            "tells no rows apart; leave it out with ignore=town",
        ),
        (
            b"x,w,y\n1,,0\n2,NA,1\n",
            {},
            'column "w" has no values: all 2 of its cells are missing; leave it out with ignore=w',
        ),
        (b"x,y\n1,0\ninf,1\n", {}, f'column "x" row 2: value "inf" is not finite {NOTE}'),
        (
            b"x,y\n1,0\n2,nan\n3,1\n",
            {},
            f'label column "y" is missing in 1 row: row 2 {NOTE}; every row needs its label: '
            "fill them in or leave those rows out",
        ),
        (
            b"x,y\n1,0\n2,1\n",
            {"label": "target"},
            'label column "target" is not in the file; its columns are "x", "y"',
        ),
        (
            b"x,y\n1,1\n2,1\n",
            {},
            'label column "y" has a single value (1); training needs at least 2 classes',
        ),
        (b"x,y\n", {}, "the file has no data rows (a header alone is not a dataset)"),
        (
            b"x,w,y\n1,2,0\n3,4\n",
            {},
            f"CSV row 2 has 2 fields but the header has 3 columns {NOTE}",
        ),
        (b"x,x,y\n1,2,0\n3,4,1\n", {}, 'column names must be unique; repeated: "x"'),
        (
            b"x,y\n1,\xe9t\xe9\n2,b\n",
            {},
            "the CSV file is not valid UTF-8 text (line 2 of the file, counting the header as "
            "line 1); save it as UTF-8",
        ),
    ],
    ids=[
        "one-level",
        "all-missing",
        "inf",
        "missing-label",
        "unknown-label",
        "single-class",
        "header-only",
        "ragged",
        "duplicate-names",
        "invalid-utf8",
    ],
)
def test_unusable_content_is_422_naming_what_and_where(client, data, params, detail):
    assert_problem(post_raw(client, data, **params), 422, detail)


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(client):
    response = post_raw(client, "\ufeffx,y\n1,0\n2,1\n".encode())
    assert response.status_code == 201
    assert response.json()["features"] == ["x"]


# Listing and reading --------------------------------------------------------------------------


def test_pages_of_two_cover_five_datasets_once_newest_first(client):
    created = [post_raw(client, f"x,y\n{i},0\n{i + 1},1\n".encode()).json()["id"] for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = client.get("/v1/datasets", params=params)
        assert response.status_code == 200
        page = response.json()
        pages += 1
        seen += [dataset["id"] for dataset in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == created[::-1]


def test_listing_defaults_to_every_dataset_on_one_page(client):
    for i in range(3):
        post_raw(client, f"x,y\n{i},0\n{i + 1},1\n".encode())
    page = client.get("/v1/datasets").json()
    assert (len(page["data"]), page["next_cursor"]) == (3, None)


def test_a_cursor_this_service_did_not_issue_is_422(client):
    response = client.get("/v1/datasets", params={"cursor": "not-a-cursor"})
    body = assert_problem(response, 422, "query.cursor: not a cursor this service issued")
    assert body["errors"][0]["field"] == "query.cursor"


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_outside_1_to_page_limit_is_422(client, limit):
    response = client.get("/v1/datasets", params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.limit"


def test_get_unknown_dataset_is_404_problem(client):
    assert_problem(client.get("/v1/datasets/nope"), 404, "dataset 'nope' does not exist")


# Deleting --------------------------------------------------------------------------------------


def test_delete_is_204_then_404_and_the_chunks_go_too(client, app):
    dataset_id = post_raw(client, CSV).json()["id"]
    response = client.delete(f"/v1/datasets/{dataset_id}")
    assert (response.status_code, response.content) == (204, b"")
    assert client.get(f"/v1/datasets/{dataset_id}").status_code == 404
    assert_problem(
        client.delete(f"/v1/datasets/{dataset_id}"), 404, f"dataset '{dataset_id}' does not exist"
    )
    with app.state.database.reads() as session:
        assert session.scalar(select(func.count()).select_from(DatasetChunk)) == 0


@pytest.mark.parametrize("status", [QUEUED, RUNNING, CANCELLING])
def test_delete_while_a_live_job_uses_it_is_409(client, app, status):
    dataset_id = post_raw(client, CSV).json()["id"]
    job_id = add_job(app.state.database, dataset_id, status=status)
    body = assert_problem(
        client.delete(f"/v1/datasets/{dataset_id}"),
        409,
        f"dataset {dataset_id} is used by a queued or running job ({job_id}); "
        "cancel it or wait for it to finish, then delete the dataset",
    )
    assert body["jobs"] == [job_id]
    assert client.get(f"/v1/datasets/{dataset_id}").status_code == 200


def test_deleting_a_dataset_keeps_its_finished_jobs_and_models(client, app):
    dataset_id = post_raw(client, CSV).json()["id"]
    job_id = add_job(app.state.database, dataset_id, status=SUCCEEDED)
    with app.state.database.writes() as session:
        model = Model(
            job_id=job_id,
            dataset_id=dataset_id,
            model_type="logistic_regression",
            metrics={},
            diagnostics={},
            artifact=b"npz",
        )
        session.add(model)
        session.commit()
    assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
    with app.state.database.reads() as session:
        job = session.get(Job, job_id)
        assert (job.status, job.dataset_id) == (SUCCEEDED, None)
        assert session.get(Model, model.id).dataset_id is None


# The OpenAPI document ---------------------------------------------------------------------------


def test_openapi_describes_the_multipart_and_raw_upload_bodies(client):
    operation = client.get("/openapi.json").json()["paths"]["/v1/datasets"]["post"]
    content = operation["requestBody"]["content"]
    file_field = content["multipart/form-data"]["schema"]["properties"]["file"]
    assert file_field["format"] == "binary"  # Swagger UI's "Try it out" offers a file picker
    assert {"text/csv", "application/csv", "application/vnd.apache.parquet"} <= set(content)
    assert operation["operationId"] == "datasets-create_dataset"
    assert {"200", "201", "413", "415", "422"} <= set(operation["responses"])
    assert [p["name"] for p in operation["parameters"]] == [
        "name",
        "label",
        "categorical",
        "ignore",
    ]


def test_openapi_has_examples_for_every_dataset_operation(client):
    document = client.get("/openapi.json").json()
    example = document["components"]["schemas"]["DatasetPublic"]["examples"][0]
    assert (example["name"], example["rows"], example["label"]) == ("penguins", 344, "species")
    assert example["warnings"] == [
        f'column "{c["name"]}": {c["warning"]}' for c in example["schema"] if c["warning"]
    ]
    assert document["components"]["schemas"]["DatasetsPublic"]["examples"]
    for path, method, code in [
        ("/v1/datasets/{dataset_id}", "get", "404"),
        ("/v1/datasets/{dataset_id}", "delete", "409"),
        ("/v1/datasets", "get", "422"),
        ("/v1/datasets", "post", "413"),
    ]:
        response = document["paths"][path][method]["responses"][code]
        assert response["content"][PROBLEM]["example"]["status"] == int(code)


# A real server ----------------------------------------------------------------------------------


@pytest.fixture
def live_api(database_url, tmp_path):
    """uvicorn on a free port, limited to 100 kB uploads, its temporary files in tmp_path."""
    port = free_port()
    env = service_env(database_url, max_upload_bytes=100_000)
    env["TMPDIR"] = str(tmp_path)
    process = start_api(env, port)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}")
        yield port
    finally:
        stop(process)


def read_status_line(sock: socket.socket) -> str:
    return sock.recv(65536).split(b"\r\n", 1)[0].decode()


@pytest.mark.slow
def test_server_refuses_oversize_uploads_before_reading_them_whole(live_api, tmp_path):
    # Declared too large: refused on the headers alone, no body sent.
    with socket.create_connection(("127.0.0.1", live_api), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
            b"Content-Length: 50000000\r\n\r\n"
        )
        assert read_status_line(sock).startswith("HTTP/1.1 413 ")

    # Chunked, no length: refused as soon as the bytes pass the limit, though 50 MB are offered.
    block = b"1.5,2.5,0\n" * 1600  # 16 kB
    sent, status = 0, None
    with socket.create_connection(("127.0.0.1", live_api), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.setblocking(False)
        while sent < 50_000_000 and status is None:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
                sent += len(block)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
            time.sleep(0.005)
            with contextlib.suppress(BlockingIOError):
                status = read_status_line(sock)
    assert status.startswith("HTTP/1.1 413 ")
    assert sent < 2_000_000
    assert list(tmp_path.iterdir()) == []  # the partial upload's temporary file is gone
