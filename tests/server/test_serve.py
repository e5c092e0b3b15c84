"""ferry serve end to end, on the default model, with the official openai client and plain HTTP.

Starts two servers on free loopback ports: the main one (-np 4, an API key, --metrics) and a small
one (-np 1, --max-queue 0, the Qwen3 chat template from tests/data for tool calls). Checks:
non-stream and stream chat (the same greedy text), usage and cached_tokens, a tool-call round trip
(streamed too), /v1/completions, the side endpoints, errors in OpenAI's shape for malformed input,
API keys, the bounded queue, cancellation on disconnect, the prompt cache on a multi-turn
conversation (cached_tokens >= 90% of the previous prompt, time to first token >= 3x lower than a
cold start) and a bounded load (--load-clients x --load-requests mixed requests, 0 failures).

A third server runs the golden hybrid qwen35moe-F16 (tests/data/models: Gated DeltaNet + gated
attention + MoE, a 512-token byte-level vocabulary) with the Qwen3.5 chat template: requests running
side by side in one batch give the greedy text each gets alone, and the multi-turn prompt cache
resumes from a recurrent-state checkpoint (cached_tokens >= 90% of the previous prompt; the time to
first token is printed and must be at least 2x below a cold start: the tiny model's prompt costs little
next to the HTTP round trip, so the issue's 3x is asserted on the default model only).
"""

import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

import openai

KEY = "test-key-1"
TOOL_TEMPLATE = "tests/data/chat-templates/templates/Qwen-Qwen3-0.6B.jinja"
HYBRID_MODEL = "tests/data/models/qwen35moe-F16.gguf"
HYBRID_TEMPLATE = "tests/data/chat-templates/templates/Qwen3.5-4B.jinja"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


class Server:
    def __init__(self, ferry, args):
        self.proc = subprocess.Popen([ferry, "serve", "--port", "0", "-t", "2"] + args,
                                     stderr=subprocess.PIPE, text=True)
        self.port = None
        self.log = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if "ready on" in line:
                break
        if self.port is None or self.proc.poll() is not None:
            raise RuntimeError("ferry serve did not start:\n" + "".join(self.log))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def http(self, method, path, body=None, headers=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        conn.close()
        return r.status, r.getheader("Retry-After"), text

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def is_openai_error(text, status):
    try:
        err = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(err.get("message"), str) and isinstance(err.get("type"), str) and "code" in err


def test_basics(srv, client):
    st, _, text = srv.http("GET", "/health")
    check(st == 200 and json.loads(text)["status"] == "ok", "/health")
    models = client.models.list()
    check(models.data[0].id == "smollm", "/v1/models reports the alias")
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a color."}]
    r = client.chat.completions.create(model="smollm", messages=msgs, max_tokens=12, temperature=0)
    c = r.choices[0]
    check(c.message.role == "assistant" and c.message.content, "non-stream chat has content")
    check(c.finish_reason in ("stop", "length"), "finish_reason")
    u = r.usage
    check(u.prompt_tokens > 0 and u.completion_tokens > 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens,
          "usage adds up")
    check(u.prompt_tokens_details is not None and u.prompt_tokens_details.cached_tokens >= 0, "cached_tokens present")

    stream = client.chat.completions.create(model="smollm", messages=msgs, max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    text, usage, reasons = "", None, []
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            text += ch.delta.content or ""
            if ch.finish_reason:
                reasons.append(ch.finish_reason)
    check(text == c.message.content, f"stream text equals non-stream: {text!r} vs {c.message.content!r}")
    check(reasons == [c.finish_reason], "one finish_reason in the stream")
    check(usage is not None and usage.completion_tokens == u.completion_tokens, "stream usage")
    check(usage is not None and usage.prompt_tokens_details.cached_tokens >= u.prompt_tokens - 1,
          "the repeated prompt comes from the cache")

    # Raw SSE: data lines and the [DONE] terminator.
    st, _, body = srv.http("POST", "/v1/chat/completions", {"messages": msgs, "max_tokens": 4, "stream": True},
                           {"Authorization": "Bearer " + KEY})
    check(st == 200 and body.rstrip().endswith("data: [DONE]"), "SSE ends with data: [DONE]")

    r = client.completions.create(model="smollm", prompt="The capital of France is", max_tokens=8, temperature=0,
                                  logprobs=2)
    check(r.choices[0].text and r.usage.completion_tokens > 0, "/v1/completions")
    lp = r.choices[0].logprobs
    check(lp is not None and len(lp.token_logprobs) == r.usage.completion_tokens and
          all(x <= 0 for x in lp.token_logprobs), "completion logprobs")
    r = client.chat.completions.create(model="smollm", messages=msgs, max_tokens=4, temperature=0, logprobs=True,
                                       top_logprobs=3)
    lc = r.choices[0].logprobs.content
    check(len(lc) == r.usage.completion_tokens and all(len(t.top_logprobs) == 3 for t in lc), "chat logprobs")
    # Seeded sampling repeats; stop strings cut the text.
    a = client.chat.completions.create(model="smollm", messages=msgs, max_tokens=16, temperature=1.0, seed=7)
    b = client.chat.completions.create(model="smollm", messages=msgs, max_tokens=16, temperature=1.0, seed=7)
    check(a.choices[0].message.content == b.choices[0].message.content, "same seed, same text")
    full = client.completions.create(model="smollm", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0)
    words = full.choices[0].text.split()
    if len(words) >= 3:
        cut = client.completions.create(model="smollm", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0,
                                        stop=[words[2]])
        check(words[2] not in cut.choices[0].text and cut.choices[0].finish_reason == "stop", "stop string")

    hdr = {"Authorization": "Bearer " + KEY}
    st, _, text = srv.http("POST", "/tokenize", {"content": "Hello world"}, hdr)
    toks = json.loads(text)["tokens"]
    check(st == 200 and len(toks) >= 2, "/tokenize")
    st, _, text = srv.http("POST", "/detokenize", {"tokens": toks}, hdr)
    check(st == 200 and json.loads(text)["content"] == "Hello world", "/detokenize round trip")
    st, _, text = srv.http("POST", "/apply-template", {"messages": msgs}, hdr)
    check(st == 200 and "Name a color." in json.loads(text)["prompt"], "/apply-template")
    st, _, text = srv.http("GET", "/props", headers=hdr)
    check(st == 200 and json.loads(text)["total_slots"] == 4, "/props")
    st, _, text = srv.http("GET", "/slots", headers=hdr)
    check(st == 200 and len(json.loads(text)) == 4, "/slots")
    st, _, text = srv.http("GET", "/metrics", headers=hdr)
    check(st == 200 and "ferry:tokens_predicted_total" in text and "ferry:prompt_cache_hits_total" in text, "/metrics")
    st, _, text = srv.http("GET", "/", headers={})
    check(st == 200 and "<html" in text, "chat page at /")


def test_errors(srv, client):
    hdr = {"Authorization": "Bearer " + KEY}
    msgs = [{"role": "user", "content": "hi"}]
    cases = [
        ("bad JSON", None, b"{not json", 400),
        ("not an object", [1, 2], None, 400),
        ("no messages", {"model": "x"}, None, 400),
        ("messages not array", {"messages": "hi"}, None, 400),
        ("bad role", {"messages": [{"role": "robot", "content": "x"}]}, None, 400),
        ("content type", {"messages": [{"role": "user", "content": 5}]}, None, 400),
        ("temperature type", {"messages": msgs, "temperature": "hot"}, None, 400),
        ("negative max_tokens", {"messages": msgs, "max_tokens": -5}, None, 400),
        ("absurd max_tokens", {"messages": msgs, "max_tokens": 10**30}, None, 400),
        ("fractional max_tokens", {"messages": msgs, "max_tokens": 2.5}, None, 400),
        ("n = 2", {"messages": msgs, "n": 2}, None, 400),
        ("stop type", {"messages": msgs, "stop": {"a": 1}}, None, 400),
        ("top_p range", {"messages": msgs, "top_p": 3}, None, 400),
        ("tools type", {"messages": msgs, "tools": "x"}, None, 400),
        ("prompt too long", {"messages": [{"role": "user", "content": "hello " * 3000}]}, None, 400),
    ]
    for name, body, raw, want in cases:
        st, _, text = srv.http("POST", "/v1/chat/completions", body, hdr, raw)
        check(st == want and is_openai_error(text, st), f"{name}: status {st}, body {text[:200]}")
    st, _, text = srv.http("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hello " * 3000}]},
                           hdr)
    check(json.loads(text)["error"]["code"] == "context_length_exceeded", "context_length_exceeded code")
    st, _, text = srv.http("POST", "/v1/completions", {"prompt": 5}, hdr)
    check(st == 400 and is_openai_error(text, st), "completions prompt type")
    st, _, text = srv.http("POST", "/v1/chat/completions", None, hdr, b"x" * (11 << 20))
    check(st == 413 and is_openai_error(text, st), f"body over 10 MiB: {st}")
    st, _, text = srv.http("GET", "/no/such/path", headers=hdr)
    check(st == 404 and is_openai_error(text, st), "404")
    # API keys: missing and wrong -> 401 (the client raises AuthenticationError); a second key works.
    st, _, text = srv.http("POST", "/v1/chat/completions", {"messages": msgs}, {})
    check(st == 401 and is_openai_error(text, st), "missing key")
    for bad in ("wrong", KEY + "x", KEY[:-1]):
        try:
            openai.OpenAI(base_url=srv.url() + "/v1", api_key=bad, max_retries=0).models.list()
            check(False, f"key {bad!r} accepted")
        except openai.AuthenticationError:
            pass
    r = openai.OpenAI(base_url=srv.url() + "/v1", api_key="test-key-2").chat.completions.create(
        model="m", messages=msgs, max_tokens=2)
    check(r.choices[0].message is not None, "second key from --api-key-file")
    try:
        client.chat.completions.create(model="m", messages=msgs, temperature="hot")
        check(False, "bad temperature accepted")
    except openai.BadRequestError as e:
        check(e.status_code == 400, "BadRequestError")


def test_tools(srv):
    client = openai.OpenAI(base_url=srv.url() + "/v1", api_key="none")

    def call(city, cid):
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}]}

    msgs = [{"role": "user", "content": "Weather in Paris?"}, call("Paris", "c1"),
            {"role": "user", "content": "Weather in Rome?"}, call("Rome", "c2"),
            {"role": "user", "content": "Weather in Berlin?"}]
    r = client.chat.completions.create(model="m", messages=msgs, tools=TOOLS, temperature=0, max_tokens=40)
    c = r.choices[0]
    calls = c.message.tool_calls or []
    check(c.finish_reason == "tool_calls" and len(calls) == 1, f"a tool call: {c}")
    if calls:
        check(calls[0].function.name == "get_weather" and json.loads(calls[0].function.arguments) == {"city": "Berlin"},
              "tool call arguments")
        check(calls[0].id.startswith("call_"), "tool call id")
    # Streamed: the call arrives as a tool_calls delta the client can assemble.
    stream = client.chat.completions.create(model="m", messages=msgs, tools=TOOLS, temperature=0, max_tokens=40,
                                            stream=True)
    names, args, reason, pieces, content = "", "", None, [], ""
    for chunk in stream:
        for ch in chunk.choices:
            for tc in ch.delta.tool_calls or []:
                if not pieces:  # the first delta opens the call: index, id, type and name
                    check(tc.index == 0 and (tc.id or "").startswith("call_") and tc.type == "function",
                          f"first tool-call delta: {tc}")
                pieces.append(tc.function.arguments or "")
                names += tc.function.name or ""
                args += tc.function.arguments or ""
            content += ch.delta.content or ""
            reason = ch.finish_reason or reason
    check(names == "get_weather" and json.loads(args or "{}") == {"city": "Berlin"} and reason == "tool_calls",
          f"streamed tool call: {names} {args} {reason}")
    # The arguments arrive in pieces as they are generated, and no part of the tags reaches content.
    check(len([p for p in pieces if p]) >= 3 and "<" not in content, f"incremental arguments: {pieces} {content!r}")
    if calls:
        check(args == calls[0].function.arguments, f"streamed arguments == non-stream: {args} {calls[0].function.arguments}")
    # Round trip: the call and its result go back; the template shows both; the model answers.
    msgs2 = msgs + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": calls[0].id if calls else "c3", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Berlin"}'}}]},
        {"role": "tool", "tool_call_id": calls[0].id if calls else "c3", "content": "sunny, 21 C"}]
    st, _, text = srv.http("POST", "/apply-template", {"messages": msgs2, "tools": TOOLS})
    prompt = json.loads(text)["prompt"]
    check("<tool_response>\nsunny, 21 C\n</tool_response>" in prompt and '"city": "Berlin"' in prompt,
          "tool result rendered by the template")
    r = client.chat.completions.create(model="m", messages=msgs2, tools=TOOLS, temperature=0, max_tokens=20)
    check(r.choices[0].finish_reason in ("stop", "length", "tool_calls"), "answer after the tool result")
    r = client.chat.completions.create(model="m", messages=msgs, tools=TOOLS, tool_choice="none", temperature=0,
                                       max_tokens=40)
    check(not r.choices[0].message.tool_calls, "tool_choice none: no parsing")


def wait_slot_free(srv, limit=5.0):
    """Seconds until slot 0 is idle, or None."""
    t0 = time.time()
    while time.time() - t0 < limit:
        st, _, text = srv.http("GET", "/slots")
        if not json.loads(text)[0]["is_processing"]:
            return time.time() - t0
        time.sleep(0.01)
    return None


def test_queue_and_cancel(srv):
    # One slot, no queue: while a long request runs, another is refused with 503 + Retry-After.
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    conn.request("POST", "/v1/completions", json.dumps(
        {"prompt": "Once upon a time", "max_tokens": 100000, "ignore_eos": True, "stream": True}),
        {"Content-Type": "application/json"})
    resp = conn.getresponse()
    check(resp.status == 200, "long stream starts")
    resp.fp.readline()
    st, retry, text = srv.http("POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2})
    check(st == 503 and retry is not None and is_openai_error(text, st), f"queue full -> 503: {st} {retry}")
    # Disconnect: the slot is free soon after the client goes away.
    sock = conn.sock
    sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    freed = wait_slot_free(srv)
    check(freed is not None and freed < 1.0, f"slot freed after disconnect ({freed})")
    print(f"slot freed {1000 * freed if freed is not None else -1:.0f} ms after the disconnect", flush=True)
    # Cancellation during prefill: a long prompt, the client leaves at once.
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    conn.request("POST", "/v1/completions", json.dumps({"prompt": "word " * 1000, "max_tokens": 4}),
                 {"Content-Type": "application/json"})
    time.sleep(0.2)
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    freed = wait_slot_free(srv)
    check(freed is not None and freed < 3.0, f"slot freed after a disconnect during prefill ({freed})")
    print(f"slot freed {1000 * freed if freed is not None else -1:.0f} ms after a disconnect during prefill", flush=True)
    st, _, _ = srv.http("POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2})
    check(st == 200, "the slot serves again")


def ttft(client, msgs, cache):
    t0 = time.time()
    stream = client.chat.completions.create(model="m", messages=msgs, max_tokens=1, temperature=0, stream=True,
                                            extra_body={"cache_prompt": cache})
    first = None
    for _ in stream:
        if first is None:
            first = time.time() - t0
    return first


def test_multi_turn(client, what="multi-turn", min_ratio=3):
    # A long first turn, then a second turn that extends it.
    system = "You are a helpful assistant. " + " ".join(f"Rule {i}: answer briefly and kindly." for i in range(25))
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": "What is a ferry?"}]
    r1 = client.chat.completions.create(model="m", messages=msgs, max_tokens=16, temperature=0)
    msgs2 = msgs + [{"role": "assistant", "content": r1.choices[0].message.content},
                    {"role": "user", "content": "And a boat?"}]
    r2 = client.chat.completions.create(model="m", messages=msgs2, max_tokens=4, temperature=0)
    cached = r2.usage.prompt_tokens_details.cached_tokens
    check(cached >= 0.9 * r1.usage.prompt_tokens, f"{what}: second turn cached {cached} of {r1.usage.prompt_tokens}")
    warm = statistics.median(ttft(client, msgs2, True) for _ in range(3))
    cold = statistics.median(ttft(client, msgs2, False) for _ in range(3))
    print(f"{what}: prompt {r2.usage.prompt_tokens} tokens, {cached} cached; "
          f"TTFT cold {1000 * cold:.0f} ms, warm {1000 * warm:.0f} ms ({cold / warm:.1f}x)", flush=True)
    check(cold >= min_ratio * warm, f"{what}: TTFT warm {warm:.3f}s vs cold {cold:.3f}s")


def test_hybrid(srv):
    client = openai.OpenAI(base_url=srv.url() + "/v1", api_key="none")
    # Continuous batching: two requests in one batch (each slot's own recurrent state) give the greedy
    # text each gets alone.
    prompts = ["The ferry left the harbour at dawn and", "In 1907 the river was crossed by"]

    def complete(p, out, i):
        out[i] = client.completions.create(model="m", prompt=p, max_tokens=24, temperature=0,
                                           extra_body={"ignore_eos": True, "cache_prompt": False}).choices[0].text

    alone = [None, None]
    for i, p in enumerate(prompts):
        complete(p, alone, i)
    together = [None, None]
    threads = [threading.Thread(target=complete, args=(p, together, i)) for i, p in enumerate(prompts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(alone[0] and together == alone, f"hybrid: batched requests give their text alone: {together} vs {alone}")
    test_multi_turn(client, "hybrid multi-turn", min_ratio=2)


def test_load(srv, clients, requests):
    rng = random.Random(1)
    errors = []
    lengths = [rng.choice([(2, 4), (20, 6), (60, 8)]) for _ in range(clients * requests)]

    def worker(w):
        client = openai.OpenAI(base_url=srv.url() + "/v1", api_key=KEY, max_retries=0, timeout=300)
        for i in range(requests):
            words, max_tokens = lengths[w * requests + i]
            try:
                r = client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": f"client {w} request {i}: " + "tell me " * words}],
                    max_tokens=max_tokens, temperature=0.7, stream=(i % 2 == 0))
                if i % 2 == 0:
                    for _ in r:
                        pass
            except Exception as e:  # noqa: BLE001 - any failure counts
                errors.append(f"{w}/{i}: {e!r}")

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"load: {clients} clients x {requests} requests in {time.time() - t0:.1f} s, {len(errors)} failed", flush=True)
    check(not errors, f"load failures: {errors[:3]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--load-clients", type=int, default=16)
    ap.add_argument("--load-requests", type=int, default=4)
    args = ap.parse_args()
    key_file = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ferry-keys-{os.getpid()}.txt")
    with open(key_file, "w") as f:
        f.write("# keys\n\ntest-key-2\n")
    main_srv = Server(args.ferry, ["-np", "4", "-c", "8192", "--api-key", KEY, "--api-key-file", key_file,
                                   "--metrics", "-a", "smollm"])
    # Small steps (-ub 32) so a disconnect during a long prefill is noticed quickly.
    tool_srv = Server(args.ferry, ["-np", "1", "-c", "4096", "-ub", "32", "--max-queue", "0",
                                   "--chat-template-file", TOOL_TEMPLATE])
    hybrid_srv = Server(args.ferry, ["-m", HYBRID_MODEL, "-np", "2", "-c", "4096", "--chat-template-file",
                                     HYBRID_TEMPLATE])
    try:
        client = openai.OpenAI(base_url=main_srv.url() + "/v1", api_key=KEY)
        for name, fn in [("basics", lambda: test_basics(main_srv, client)),
                         ("errors", lambda: test_errors(main_srv, client)),
                         ("tools", lambda: test_tools(tool_srv)),
                         ("queue and cancel", lambda: test_queue_and_cancel(tool_srv)),
                         ("multi-turn", lambda: test_multi_turn(client)),
                         ("hybrid", lambda: test_hybrid(hybrid_srv)),
                         ("load", lambda: test_load(main_srv, args.load_clients, args.load_requests))]:
            t0 = time.time()
            fn()
            print(f"{name}: {time.time() - t0:.1f} s", flush=True)
    finally:
        main_srv.stop()
        tool_srv.stop()
        hybrid_srv.stop()
        os.unlink(key_file)
    if failures:
        print(f"{len(failures)} checks failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
