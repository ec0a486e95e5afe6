"""The results store: `result.json` files under one directory, with a SQLite index for queries.

The files are the truth: each run writes its own record atomically, so any number of processes
can add records at once without losing one. `<results>/.index.sqlite` only caches what the files
say, keyed by path and the sha256 of the file's bytes (a record edited in place with the same size
and mtime is still noticed; records are small, so hashing them all is cheap), and is brought up
to date by `refresh()` inside one
`BEGIN IMMEDIATE` transaction, so concurrent refreshers queue instead of overwriting each other.
A malformed record is kept in the index with its reason, reported, and left out of queries.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import mmbench
from mmbench.errors import MMBenchError
from mmbench.results.records import RESULT_FILE, SCHEMA_VERSION, changed_settings, compatibility, parse_record

INDEX_FILE = ".index.sqlite"
_INDEX_VERSION = 2
_FINGERPRINT = f"index={_INDEX_VERSION} schema={SCHEMA_VERSION} mmbench={mmbench.__version__}"
_BUSY_TIMEOUT_MS = 120_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, digest TEXT NOT NULL,
    model TEXT, dataset TEXT, tier TEXT, seed INTEGER, record TEXT, error TEXT
);
CREATE INDEX IF NOT EXISTS files_by_board ON files (dataset, tier, model);
"""


@dataclass(frozen=True)
class StoredRecord:
    path: str
    """Relative to the results directory, with forward slashes."""
    record: dict

    @property
    def run_key(self) -> tuple[str, str, str, int]:
        r = self.record
        return r["model"], r["dataset"], r["tier"], r["seed"]


@dataclass(frozen=True)
class BadRecord:
    path: str
    reason: str


class ResultStore:
    """Records under `root` (any depth, `<anything>/result.json`; dot-directories are skipped)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MMBenchError(f"results directory {self.root} does not exist")
        self._index = self.root / INDEX_FILE if os.access(self.root, os.W_OK) else None
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        """The on-disk index, or an in-memory one where the results directory is read-only."""
        db = sqlite3.connect(self._index or ":memory:", timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        return db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def refresh(self) -> None:
        """Bring the index up to date with the files: read new and changed ones, drop vanished ones.

        An index file that is not a database (e.g. truncated) is only a cache: it
        is rebuilt.
        """
        try:
            self._refresh()
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError or self._index is None:
                raise
            self._db.close()
            self._index.unlink(missing_ok=True)
            self._db = self._connect()
            self._refresh()

    def _refresh(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            fingerprint = db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
            if fingerprint is None or fingerprint[0] != _FINGERPRINT:
                db.execute("DELETE FROM files")
                db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (_FINGERPRINT,))
            indexed = dict(db.execute("SELECT path, digest FROM files"))
            present = self._scan()
            for path in indexed.keys() - present.keys():
                db.execute("DELETE FROM files WHERE path = ?", (path,))
            for path, data in present.items():
                digest = hashlib.sha256(data).hexdigest()
                if indexed.get(path) != digest:
                    db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (path, digest, *self._parse(path, data)))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _scan(self) -> dict[str, bytes]:
        """The bytes of every record file (an unreadable one as empty bytes: it is reported bad)."""
        found = {}
        for directory, subdirs, files in os.walk(self.root):
            subdirs[:] = [d for d in subdirs if not d.startswith(".")]
            if RESULT_FILE in files:
                path = Path(directory) / RESULT_FILE
                try:
                    data = path.read_bytes()
                except FileNotFoundError:
                    continue
                except OSError:
                    data = b""
                found[path.relative_to(self.root).as_posix()] = data
        return found

    def _parse(self, path: str, data: bytes) -> tuple:
        try:
            r = parse_record(data, self.root / path)
        except MMBenchError as exc:
            return None, None, None, None, None, str(exc)
        return r["model"], r["dataset"], r["tier"], r["seed"], json.dumps(r, sort_keys=True), None

    def records(self, dataset: str | None = None, tier: str | None = None) -> list[StoredRecord]:
        """Valid records in the index (call `refresh()` first), sorted by path."""
        rows = self._query("record", "error IS NULL", dataset, tier)
        return [StoredRecord(path, json.loads(record)) for path, record in rows]

    def bad_records(self) -> list[BadRecord]:
        """Records that failed validation, with the reason, sorted by path."""
        return [BadRecord(path, reason) for path, reason in self._query("error", "error IS NOT NULL", None, None)]

    def _query(self, column: str, condition: str, dataset: str | None, tier: str | None) -> list[tuple]:
        sql = f"SELECT path, {column} FROM files WHERE {condition}"
        params: list[str] = []
        for name, value in (("dataset", dataset), ("tier", tier)):
            if value is not None:
                sql += f" AND {name} = ?"
                params.append(value)
        try:
            return self._db.execute(sql + " ORDER BY path", params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise


def latest_per_run(records: list[StoredRecord]) -> tuple[list[StoredRecord], list[BadRecord]]:
    """One record per (model, dataset, tier, seed, versions, changed settings): the newest by creation time.

    The others come back as problems, so a rerun seed is never counted twice; a seed run again with
    other `--set` settings is another run, not a duplicate (it has a board of its own).
    """
    groups: dict[tuple, list[StoredRecord]] = {}
    for item in records:
        key = (*item.run_key, json.dumps(compatibility(item.record), sort_keys=True), changed_settings(item.record))
        groups.setdefault(key, []).append(item)
    kept, dropped = [], []
    for key in sorted(groups):
        newest, *older = reversed(by_creation(groups[key]))
        kept.append(newest)
        dropped += [BadRecord(s.path, f"{s.path}: duplicate of seed {key[3]} of {key[0]} on {key[1]}/{key[2]}; using newer {newest.path}") for s in older]
    return sorted(kept, key=lambda s: s.path), sorted(dropped, key=lambda b: b.path)


def newest_per_run(records: list[StoredRecord]) -> dict[tuple[str, str, str, int], StoredRecord]:
    """The newest record of each run (model, dataset, tier, seed), whatever its versions."""
    return {item.run_key: item for item in by_creation(records)}


def by_creation(records: list[StoredRecord]) -> list[StoredRecord]:
    """Oldest first (by the record's creation time, then its path)."""
    return sorted(records, key=lambda s: (str(s.record["provenance"].get("created", "")), s.path))


def load_results(root: str | Path, dataset: str | None = None,
                 tier: str | None = None) -> tuple[list[StoredRecord], list[BadRecord]]:
    """Refresh the index and return the usable records and every problem (bad or duplicate record)."""
    with ResultStore(root) as store:
        store.refresh()
        records, duplicates = latest_per_run(store.records(dataset, tier))
        return records, sorted(store.bad_records() + duplicates, key=lambda b: b.path)
