"""The two tables as every Python benchmark reads them: column lists, the value conventions
(key letters, "?" tempo, -1 duration) and the benchmarks' fixed splits. Needs only pandas and
scikit-learn, so a benchmark without XGBoost can use it."""
import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, train_test_split


KEYS = {k: i for i, k in enumerate(["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"])}
MG_AUDIO = ["acousticness", "danceability", "duration_ms", "energy", "instrumentalness", "key", "liveness",
            "loudness", "mode", "speechiness", "tempo", "valence"]
ST_AUDIO = ["duration_ms", "explicit", "danceability", "energy", "key", "loudness", "mode", "speechiness",
            "acousticness", "instrumentalness", "liveness", "valence", "tempo", "time_signature"]


def numeric(df, cols):
    x = df[cols].copy()
    if "tempo" in x and x["tempo"].dtype == object:
        x["tempo"] = pd.to_numeric(x["tempo"].replace("?", np.nan))
    if "duration_ms" in x:
        x["duration_ms"] = x["duration_ms"].replace(-1.0, np.nan)
    if "key" in x and x["key"].dtype == object:
        x["key"] = x["key"].map(KEYS)
    if "mode" in x and x["mode"].dtype == object:
        x["mode"] = (x["mode"] == "Major").astype(float)
    if "explicit" in x:
        x["explicit"] = x["explicit"].astype(float)
    return x.astype(np.float64).values


def music_genre_split(path):
    """music_genre_50k without its blank rows, and the benchmarks' split: stratified 80/20, seed 42
    (row indices ascending)."""
    mg = pd.read_csv(path, dtype={"tempo": str}).dropna(how="all").reset_index(drop=True)
    tr, te = train_test_split(np.arange(len(mg)), test_size=0.2, stratify=mg["music_genre"], random_state=42)
    return mg, np.sort(tr), np.sort(te)


def tracks_split(path):
    """spotify_tracks_114k and the benchmarks' split: 80/20 grouped by track_id, seed 42."""
    st = pd.read_csv(path, index_col=0)
    tr, te = next(GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=42).split(st, groups=st["track_id"]))
    return st, tr, te


def write_split(df, label, split, tmp, name):
    """The split's two sides as CSV files every tool reads, the sorted genres, and each side's
    genre indices: (train_csv, test_csv, classes, ytr, yte)."""
    import os
    tr, te = split
    train_csv, test_csv = os.path.join(tmp, f"{name}-train.csv"), os.path.join(tmp, f"{name}-test.csv")
    df.iloc[tr].to_csv(train_csv, index=False)
    df.iloc[te].to_csv(test_csv, index=False)
    classes = np.array(sorted(df[label].unique()))
    index = {c: i for i, c in enumerate(classes)}
    return train_csv, test_csv, classes, df[label].iloc[tr].map(index).values, df[label].iloc[te].map(index).values
