"""The peer for tests/bench/http: FastAPI serving scikit-learn's RandomForest on /v1/genre, with the
same request and reply shape as timbre-serve (features in, top-5 genres out)."""
import os
import pickle

import numpy as np
from fastapi import FastAPI, HTTPException, Request

app = FastAPI()
with open(os.environ["TIMBRE_BENCH_MODEL"], "rb") as f:
    MODEL, FEATURES, MEANS = pickle.load(f)


@app.post("/v1/genre")
async def genre(request: Request):
    body = await request.json()
    feats = body.get("features")
    if not isinstance(feats, dict):
        raise HTTPException(status_code=400, detail="features must be an object")
    row = np.array([[float(feats.get(name, MEANS[i])) for i, name in enumerate(FEATURES)]])
    proba = MODEL.predict_proba(row)[0]
    top = np.argsort(-proba)[:5]
    return {"genre": str(MODEL.classes_[top[0]]),
            "probabilities": [{"genre": str(MODEL.classes_[i]), "probability": float(proba[i])} for i in top]}
