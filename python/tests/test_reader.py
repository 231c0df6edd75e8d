"""calibctl_store against `calibctl get` on the same store: a store directory, a node snapshot and `calibctl serve`.

Needs a built calibctl: $CALIBCTL_BIN (scripts/test.sh sets it), else `calibctl` on PATH.
"""

import datetime as dt
import os
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from calibctl_store import CalibStore, CalibStoreError, content_hash

CALIBCTL = os.environ.get("CALIBCTL_BIN") or shutil.which("calibctl")
pytestmark = pytest.mark.skipif(not CALIBCTL, reason="needs a built calibctl ($CALIBCTL_BIN)")

TYPES = {
    "pedestals": np.float32, "pixel_status": np.uint16, "pixel_rms": np.float64,
    "pixel_mask": np.uint8, "pixel_gain": np.float32, "common_mode": np.float64,
}
RUNS = [0, 7, 10, 15, 22, 40]


def cli(store, *args, check=True):
    r = subprocess.run([CALIBCTL, *args, "--store", store], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"calibctl {' '.join(args)}: {r.stderr}")
    return r


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("calibctl-store")
    store = str(tmp / "store")
    subprocess.run([CALIBCTL, "store", "init", store], check=True, capture_output=True)
    cli(store, "store", "detector", "add", "jf4m", "--kind", "jungfrau", "--alias", "CxiDs1.0:Jungfrau.0")
    rng = np.random.default_rng(1)

    def put(ctype, runs, seed, *extra):
        shape = (9,) if ctype == "common_mode" else (2, 3, 4)
        a = (rng.random(shape) * 100 + seed).astype(TYPES[ctype])
        path = str(tmp / f"{ctype}-{seed}.npy")
        np.save(path, a)
        cli(store, "put", "jf4m", ctype, f"{ctype}={path}", "--runs", runs, *extra)
        time.sleep(0.002)

    for ctype in TYPES:
        put(ctype, "0-", 1, "--attr", "source=dark run 98", "--attr", "gain=1.5", "--attr", "mode=3")
        put(ctype, "10-20", 2)
    as_of = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    time.sleep(0.002)
    for ctype in TYPES:
        put(ctype, "15-", 3)
    cli(store, "store", "global-tag", "create", "GT1", *sum((["--entry", f"jf4m/{t}=default"] for t in TYPES), []))
    for ctype in TYPES:
        put(ctype, "5-12", 4, "--tag", "v2", "--create-tag")
        put(ctype, "18-30", 5)  # after the global tag: invisible through it
    snap = str(tmp / "snap")
    cli(store, "store", "snapshot", "--global-tag", "GT1", "-o", snap)
    port_file = tmp / "port"
    server = subprocess.Popen([CALIBCTL, "serve", "--store", store, "--listen", "127.0.0.1:0", "--port-file", str(port_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if port_file.exists() and port_file.read_text().strip():
            break
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port_file.read_text().strip()}"
    yield {"tmp": tmp, "store": store, "snap": snap, "url": url, "as_of": as_of}
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()


def expected(world, store, ctype, run, args):
    out = str(world["tmp"] / f"want-{ctype}-{run}.npy")
    r = cli(store, "get", "jf4m", ctype, "--run", str(run), "-o", out, *args, check=False)
    return np.load(out) if r.returncode == 0 else r


def compare(world, cpath, store_for_cli, selection):
    kwargs, args = selection
    cs = CalibStore(cpath, "CxiDs1.0:Jungfrau.0", **kwargs)
    compared = 0
    for ctype in TYPES:
        for run in RUNS:
            want = expected(world, store_for_cli, ctype, run, args)
            if isinstance(want, np.ndarray):
                got = getattr(cs, ctype)(run)
                assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want), (ctype, run, selection)
            else:
                with pytest.raises(CalibStoreError) as e:
                    getattr(cs, ctype)(run)
                assert e.value.exit_status == want.returncode, (ctype, run, e.value, want.stderr)
            compared += 1
    return compared


SELECTIONS = [({}, []), ({"tag": "v2"}, ["--tag", "v2"]), ({"global_tag": "GT1"}, ["--global-tag", "GT1"])]


@pytest.mark.parametrize("selection", SELECTIONS, ids=["default", "tag-v2", "global-tag"])
def test_store_directory_answers_as_calibctl_get(world, selection):
    assert compare(world, world["store"], world["store"], selection) == len(TYPES) * len(RUNS)


@pytest.mark.parametrize("selection", SELECTIONS, ids=["default", "tag-v2", "global-tag"])
def test_server_answers_as_calibctl_get(world, selection):
    assert compare(world, world["url"], world["store"], selection) == len(TYPES) * len(RUNS)


def test_as_of(world):
    sel = ({"as_of": world["as_of"]}, ["--as-of", world["as_of"]])
    compare(world, world["store"], world["store"], sel)
    compare(world, world["url"], world["store"], sel)
    gt = ({"global_tag": "GT1", "as_of": world["as_of"]}, ["--global-tag", "GT1", "--as-of", world["as_of"]])
    compare(world, world["snap"], world["store"], gt)
    with pytest.raises(CalibStoreError) as e:
        CalibStore(world["store"], "jf4m", as_of="2999-01-01").pedestals(1)
    assert e.value.exit_status == 64


def test_snapshot_answers_as_the_source_through_its_global_tag(world):
    compare(world, world["snap"], world["store"], SELECTIONS[2])


def test_content_hash_rule_matches_every_stored_payload(world):
    root = os.path.join(world["store"], "payloads")
    n = 0
    for sub in os.listdir(root):
        if sub == ".tmp":
            continue
        for name in os.listdir(os.path.join(root, sub)):
            with h5py.File(os.path.join(root, sub, name), "r") as f:
                d = f["data"]
                assert content_hash({k: d[k][()] for k in d}, dict(d.attrs)) == name[:-3]
                n += 1
    assert n == 5 * len(TYPES)


def test_damaged_payload_is_refused(world):
    copy = str(world["tmp"] / "damaged")
    shutil.copytree(world["store"], copy)
    cs = CalibStore(copy, "jf4m")
    sha = cs.lookup("pedestals", 3)["sha256"]
    with h5py.File(os.path.join(copy, "payloads", sha[:2], sha + ".h5"), "r+") as f:
        f["data/pedestals"][0, 0, 0] += 1
    with pytest.raises(CalibStoreError) as e:
        CalibStore(copy, "jf4m").pedestals(3)
    assert "damaged" in e.value.message and e.value.exit_status == 65
    assert CalibStore(copy, "jf4m", verify=False).pedestals(3).shape == (2, 3, 4)


def test_unknown_names_fail_like_calibctl(world):
    for cpath in (world["store"], world["url"]):
        with pytest.raises(CalibStoreError) as e:
            CalibStore(cpath, "jf4x").pedestals(1)
        assert e.value.exit_status == 65
        with pytest.raises(CalibStoreError):
            CalibStore(cpath, "jf4m", global_tag="nope").pedestals(1)
