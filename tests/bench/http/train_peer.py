"""Trains the FastAPI peer's model: scikit-learn RandomForest(100, balanced) on the same music_genre_50k
rows and features (audio + popularity) that timbre-train gets, pickled with its feature order."""
import pickle
import sys

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

sys.path.insert(0, sys.argv[3])
from tables import MG_AUDIO, numeric  # noqa: E402

df = pd.read_csv(sys.argv[1], dtype={"tempo": str}).dropna(how="all").reset_index(drop=True)
features = MG_AUDIO + ["popularity"]
x = numeric(df, features)
means = np.nanmean(x, axis=0)
x = np.where(np.isnan(x), means, x)
model = RandomForestClassifier(n_estimators=100, class_weight="balanced", n_jobs=2, random_state=42)
model.fit(x, df["music_genre"].values)
model.n_jobs = 1  # one request at a time per worker, as a web server calls it
with open(sys.argv[2], "wb") as f:
    pickle.dump((model, features, means.tolist()), f)
