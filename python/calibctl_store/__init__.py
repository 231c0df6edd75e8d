"""Read calibctl constants from a store directory, a node snapshot or a `calibctl serve` server.

    from calibctl_store import CalibStore
    cs = CalibStore('/data/calib/store', 'jf4m')          # or CalibStore('http://127.0.0.1:8765', 'jf4m')
    peds = cs.pedestals(150)                              # numpy array, content hash verified

The lookup rule is calibctl's (docs/store.md): among the entries of the tag (default 'default', or the global tag's
tag) whose run range contains the run and that were inserted at or before the as-of time (the earlier of `as_of`
and the global tag's own), the newest insertion wins (latest insertion time, then highest entry id).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import struct
import sqlite3
import urllib.error
import urllib.parse
import urllib.request

import h5py
import numpy as np

__all__ = ["CalibStore", "CalibStoreError", "content_hash", "parse_time"]
__version__ = "0.1.0"

HASH_RULE = "calibctl-content-v1"
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class CalibStoreError(LookupError):
    """A lookup that has no answer: the message and fix calibctl gives, and its exit status."""

    def __init__(self, message, fix=None, exit_status=65):
        super().__init__(message if not fix else f"{message}\n  fix: {fix}")
        self.message, self.fix, self.exit_status = message, fix, exit_status


def parse_time(t):
    """Microseconds since 1970 UTC from a datetime, '2026-11-21', '2026-11-21T20:16:44.5Z', '...+01:00' or '@SECONDS'."""
    if t is None:
        return None
    if isinstance(t, _dt.datetime):
        d = t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)
    else:
        s = str(t).strip()
        if s.startswith("@"):
            return round(float(s[1:]) * 1_000_000)
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        try:
            d = _dt.datetime.fromisoformat(s)
        except ValueError:
            raise CalibStoreError(f"time '{t}' is not a valid time",
                                  "write a time as 2026-11-21, 2026-11-21T20:16:44Z or 2026-11-21T20:16:44.5+01:00 (UTC if no offset)", 64)
        if d.tzinfo is None:
            d = d.replace(tzinfo=_dt.timezone.utc)
    return (d - _EPOCH) // _dt.timedelta(microseconds=1)


def _field(h, s):
    b = s.encode("utf-8")
    h.update(f"{len(b)}:".encode())
    h.update(b)


def _double_hex(v):
    return format(struct.unpack("<Q", struct.pack("<d", float(v)))[0], "x")


def content_hash(datasets, attributes):
    """The canonical content hash (calibctl-content-v1, docs/formats-store.md) of {name: ndarray} and {name: value}."""
    h = hashlib.sha256()
    _field(h, HASH_RULE)
    _field(h, f"datasets={len(datasets)}")
    for name in sorted(datasets, key=lambda n: n.encode("utf-8")):
        a = np.asarray(datasets[name])
        raw = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
        _field(h, name)
        _field(h, a.dtype.name)
        _field(h, f"rank={a.ndim}")
        _field(h, ",".join(str(d) for d in a.shape))
        h.update(f"{len(raw)}:".encode())
        h.update(raw)
    _field(h, f"attributes={len(attributes)}")
    for name in sorted(attributes, key=lambda n: n.encode("utf-8")):
        v = attributes[name]
        _field(h, name)
        if isinstance(v, (bytes, np.bytes_)):
            kind, text = "string", bytes(v).decode("utf-8")
        elif isinstance(v, str):
            kind, text = "string", v
        else:
            arr = np.asarray(v)
            if arr.ndim == 0 or arr.size == 1:
                x = arr.reshape(()).item()
                if isinstance(x, (bytes, str)):
                    kind, text = "string", x.decode("utf-8") if isinstance(x, bytes) else x
                elif arr.dtype.kind in "iub":
                    kind, text = "int", str(int(x))
                else:
                    kind, text = "double", _double_hex(x)
            elif arr.dtype.kind in "iub":
                kind, text = "ints", ",".join(str(int(x)) for x in arr.ravel())
            else:
                kind, text = "doubles", ",".join(_double_hex(x) for x in arr.ravel())
        _field(h, kind)
        _field(h, text)
    return h.hexdigest()


def _read_payload(f, sha256, source):
    """{dataset: ndarray} of an open payload file, verified against sha256."""
    data = f["data"]
    arrays = {name: data[name][()] for name in data.keys()}
    attrs = {k: data.attrs[k] for k in data.attrs.keys()}
    got = content_hash(arrays, attrs)
    if got != sha256:
        raise CalibStoreError(f"payload {sha256[:12]} in {source} is damaged: its content hashes to {got[:12]}",
                              "the file changed behind the store's back; restore it from a bundle (store import) or put the constants again", 65)
    return arrays


class CalibStore:
    """Constants of one detector, from a store directory, a node snapshot or a `calibctl serve` URL.

    cpath: the store directory (holding index.db) or http://HOST:PORT of `calibctl serve`.
    dname: detector name or alias (e.g. the DAQ source 'CxiDs1.0:Jungfrau.0').
    tag / global_tag: which tag (default 'default'); as_of: ignore insertions after this time.
    verify: check every payload against its content hash (default True).
    """

    def __init__(self, cpath, dname, tag=None, global_tag=None, as_of=None, verify=True, timeout=30):
        if tag is not None and global_tag is not None:
            raise CalibStoreError("give --tag or --global-tag, not both", None, 64)
        self.cpath, self.dname = str(cpath), dname
        self.tag, self.global_tag, self.as_of, self.verify, self.timeout = tag, global_tag, as_of, verify, timeout
        self.remote = self.cpath.startswith(("http://", "https://"))
        self._db = None

    # The LCLS access methods (seed 001): one array each.
    def pedestals(self, run): return self.constants("pedestals", run)
    def pixel_status(self, run): return self.constants("pixel_status", run)
    def pixel_rms(self, run): return self.constants("pixel_rms", run)
    def pixel_mask(self, run): return self.constants("pixel_mask", run)
    def pixel_gain(self, run): return self.constants("pixel_gain", run)
    def common_mode(self, run): return self.constants("common_mode", run)

    def constants(self, ctype, run, dataset=None):
        """The array of type `ctype` for `run`: the dataset named like the type, else the payload's only one."""
        arrays = self.payload(ctype, run)
        if dataset is None:
            dataset = ctype if ctype in arrays else (next(iter(arrays)) if len(arrays) == 1 else None)
        if dataset not in arrays:
            raise CalibStoreError(f"the payload of {self.dname}/{ctype} run {run} holds {', '.join(sorted(arrays))}",
                                  "pass dataset=NAME", 64)
        return arrays[dataset]

    def payload(self, ctype, run):
        """{dataset name: ndarray} of the payload that applies to `run`."""
        entry = self.lookup(ctype, run)
        return self._remote_payload(entry) if self.remote else self._local_payload(entry["sha256"])

    def lookup(self, ctype, run):
        """The winning validity entry as a dict: sha256, first_run, last_run (None = open), inserted_at_us, tag."""
        run = int(run)
        if run < 0:
            raise CalibStoreError(f"run '{run}' is not a run number (0 to 2^63-1)", None, 64)
        as_of = parse_time(self.as_of)
        if as_of is not None and as_of > parse_time(_dt.datetime.now(_dt.timezone.utc)):
            raise CalibStoreError(f"the as-of time {self.as_of} is in the future; answers as of a future time still change",
                                  "omit --as-of for the current answer, or give a time that has passed", 64)
        return self._remote_lookup(ctype, run) if self.remote else self._local_lookup(ctype, run, as_of)

    # -- a store directory or snapshot (sqlite3, read-only) --

    def _index(self):
        if self._db is None:
            path = os.path.join(self.cpath, "index.db")
            if not os.path.exists(path):
                raise CalibStoreError(f"no constants store at {self.cpath} (no index.db)",
                                      f"pass a store directory, or create one with `calibctl store init {self.cpath}`", 69)
            wal = path + "-wal"
            live = os.path.exists(wal) and os.path.getsize(wal) > 0
            # Nothing writes a store without a live -wal (or a snapshot): immutable needs no lock or -shm file.
            mode = "mode=ro" if live else "immutable=1"
            self._db = sqlite3.connect(f"file:{urllib.parse.quote(os.path.abspath(path))}?{mode}", uri=True)
        return self._db

    def _local_lookup(self, ctype, run, as_of):
        db = self._index()
        row = db.execute("SELECT id, name FROM detectors WHERE name=?", (self.dname,)).fetchone() or \
            db.execute("SELECT d.id, d.name FROM detector_aliases a JOIN detectors d ON d.id=a.detector_id WHERE a.alias=?",
                       (self.dname,)).fetchone()
        if row is None:
            raise CalibStoreError(f"unknown detector '{self.dname}' in store {self.cpath}",
                                  "`calibctl store list detectors` shows the detectors", 65)
        det_id, det_name = row
        t = db.execute("SELECT id FROM calib_types WHERE name=?", (ctype,)).fetchone()
        if t is None:
            raise CalibStoreError(f"unknown calibration type '{ctype}' in store {self.cpath}", None, 65)
        type_id = t[0]
        cap = as_of if as_of is not None else 2**63 - 1
        if self.global_tag is not None:
            g = db.execute("SELECT id, as_of_us FROM global_tags WHERE name=?", (self.global_tag,)).fetchone()
            if g is None:
                raise CalibStoreError(f"unknown global tag '{self.global_tag}'", None, 65)
            e = db.execute("SELECT tag_id FROM global_tag_entries WHERE global_tag_id=? AND detector_id=? AND type_id=?",
                           (g[0], det_id, type_id)).fetchone()
            if e is None:
                raise CalibStoreError(f"global tag {self.global_tag} has no entry for {self.dname}/{ctype}",
                                      f"`calibctl store global-tag show {self.global_tag}` lists its entries", 65)
            tag_id, cap = e[0], min(cap, g[1])
            tag_name = db.execute("SELECT name FROM tags WHERE id=?", (tag_id,)).fetchone()[0]
        else:
            name = self.tag or "default"
            r = db.execute("SELECT id, name FROM tags WHERE detector_id=? AND type_id=? AND (name=? OR alias=?) "
                           "ORDER BY name=? DESC LIMIT 1", (det_id, type_id, name, name, name)).fetchone()
            if r is None:
                raise CalibStoreError(f"no tag {name} for {det_name}/{ctype}", None, 65)
            tag_id, tag_name = r
        r = db.execute("SELECT id, sha256, first_run, last_run, inserted_at_us FROM iovs WHERE tag_id=? AND first_run<=? "
                       "AND (last_run IS NULL OR last_run>=?) AND inserted_at_us<=? "
                       "ORDER BY inserted_at_us DESC, id DESC LIMIT 1", (tag_id, run, run, cap)).fetchone()
        if r is None:
            raise CalibStoreError(f"no constants for {self.dname}/{ctype} run {run} in tag {tag_name}",
                                  f"`calibctl store explain {self.dname} {ctype} --run {run}` shows what is there", 65)
        return {"id": r[0], "sha256": r[1], "first_run": r[2], "last_run": r[3], "inserted_at_us": r[4], "tag": tag_name}

    def _local_payload(self, sha):
        path = os.path.join(self.cpath, "payloads", sha[:2], sha + ".h5")
        if not os.path.exists(path):
            raise CalibStoreError(f"payload {sha[:12]} is missing: {path} does not exist",
                                  "restore it from a bundle (`calibctl store import`) or put the constants again", 65)
        with h5py.File(path, "r") as f:
            return _read_payload(f, sha, path) if self.verify else {k: v[()] for k, v in f["data"].items()}

    # -- calibctl serve (HTTP) --

    def _get(self, path):
        url = self.cpath.rstrip("/") + path
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())["error"]
            except Exception:
                raise CalibStoreError(f"{url} answered HTTP {e.code}", "check the URL (docs/serve.md)", 69)
            raise CalibStoreError(err["message"], err.get("fix"), err.get("exitStatus", 65))
        except urllib.error.URLError as e:
            raise CalibStoreError(f"no constants server answered at {self.cpath}: {e.reason}",
                                  "check that `calibctl serve` runs there, or read a local snapshot", 69)

    def _remote_lookup(self, ctype, run):
        q = {"detector": self.dname, "type": ctype, "run": str(run)}
        if self.tag is not None:
            q["tag"] = self.tag
        if self.global_tag is not None:
            q["global-tag"] = self.global_tag
        if self.as_of is not None:
            q["as-of"] = self.as_of.isoformat() if isinstance(self.as_of, _dt.datetime) else str(self.as_of)
        a = json.loads(self._get("/v1/lookup?" + urllib.parse.urlencode(q, quote_via=urllib.parse.quote)))
        e = a["entry"]
        return {"id": e["id"], "sha256": e["sha256"], "first_run": e["runs"]["first"], "last_run": e["runs"].get("last"),
                "inserted_at_us": e["insertedAtMicroseconds"], "tag": e["tag"], "payload_url": a["payloadURL"], "answer": a}

    def _remote_payload(self, entry):
        sha = entry["sha256"]
        body = self._get(entry["payload_url"])
        with h5py.File(io.BytesIO(body), "r") as f:
            return _read_payload(f, sha, self.cpath + entry["payload_url"]) if self.verify else {k: v[()] for k, v in f["data"].items()}

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
