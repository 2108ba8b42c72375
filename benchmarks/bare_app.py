"""The peer of the prediction benchmark: FastAPI doing nothing but the HTTP and JSON work.

    python -m uvicorn --factory benchmarks.bare_app:create_app --host 127.0.0.1 --port P

``POST /v1/models/{model_id}/predictions`` parses the body into the service's own
``PredictionRequest`` (strict finite numbers, the same validation) and answers the
service's ``PredictionResponse`` with one prediction per row, shaped and sized as the
service's (two classes, a label and two full-precision probabilities each), with no
model, no database and no arithmetic. Like the service's route it is a plain ``def``,
so FastAPI runs it in its threadpool too: the difference between the two is the
service's own work (middleware, session, model cache, NumPy), not the framework's.
``GET /healthz`` answers like the service's probe.
"""

from fastapi import FastAPI

from service.models.schemas import Prediction, PredictionRequest, PredictionResponse

CLASSES = [0, 1]
# A logistic unit's output at z = 1, and its complement: as many digits as a real answer.
PROBABILITIES = ({"0": 0.2689414213699951, "1": 0.7310585786300049}, 1)


def create_app() -> FastAPI:
    app = FastAPI(title="bare peer", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v1/models/{model_id}/predictions", response_model=PredictionResponse)
    def create_predictions(model_id: str, prediction_in: PredictionRequest) -> PredictionResponse:
        """One fixed prediction per row: the response the service would send, unearned."""
        probabilities, label = PROBABILITIES
        rows = prediction_in.rows or prediction_in.records or []
        return PredictionResponse(
            model_id=model_id,
            classes=CLASSES,
            predictions=[Prediction(label=label, probabilities=probabilities) for _ in rows],
        )

    @app.get("/healthz")
    def get_health() -> dict[str, str]:
        return {"status": "ok"}

    return app
