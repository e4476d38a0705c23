"""make bench, second table: embeddings and a streamed Anthropic Messages call, on the direct path and through LiteLLM.

Runs after the chat table and the memory soak, in a fresh gateway worker whose policy also holds LiteLLM models
(so LiteLLM is loaded there and the chat table's memory figures stay those of a relay-only worker). Each row gives
the gateway's CPU ms per request for the same call on the direct path (the OpenAI-wire relay for embeddings, the
native Anthropic relay for Messages) and through LiteLLM, so LiteLLM's own per-call cost is the difference:
`use_litellm` for embeddings (litellm.aembedding); for Messages an OpenAI-wire model, which LiteLLM's Anthropic adapter
translates (Claude models always take the native relay: LiteLLM's own Anthropic Messages stream needs its proxy
extras, which are not installed).

The chat rows for an Anthropic model (issue 14) give the same call on the translated path (LiteLLM's Anthropic
configuration over the gateway's pooled client: api/translated.py) and through litellm.acompletion (`use_litellm`),
non-streaming and as a 20-chunk stream.

The last two rows measure failover: the same chat call to a model with one deployment and to a model with three
whose first-tried deployment refuses connections; this worker runs with cooldowns off (LLMPROXY_COOLDOWN_FAILURES
very high), so every call pays one failed attempt, and the p50 difference is the added latency of a failover.
"""

from dataclasses import dataclass

EMBEDDING_INPUT = ["The quick brown fox jumps over the lazy dog"] * 4
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark"}]


@dataclass(frozen=True)
class EndpointCase:
    label: str
    path: str
    model: str
    body: dict
    stream: bool


def policy_yaml(provider_port: int) -> str:
    openai_base = f"http://127.0.0.1:{provider_port}/v1"
    anthropic_base = f"http://127.0.0.1:{provider_port}"
    lines = ["models:"]
    lines += on_both_paths("bench-embed", "openai/text-embedding-3-small", openai_base)
    lines += [
        "  bench-claude:",
        "    litellm_model: anthropic/claude-bench",
        f"    api_base: {anthropic_base}",
        "  bench-claude-litellm:",  # any model that is not Anthropic's: LiteLLM's adapter translates the call
        "    litellm_model: openai/fake-bench-model",
        f"    api_base: {openai_base}",
    ]
    lines += on_both_paths("bench-claude-chat", "anthropic/claude-bench", anthropic_base)
    lines += [
        "  bench-one:",  # the chat model of the first table, measured again in this worker for comparison
        "    litellm_model: openai/fake-bench-model",
        f"    api_base: {openai_base}",
        "  bench-ha:",  # three deployments; the first tried refuses connections (nothing listens on port 1)
        "    deployments:",
        "      - {litellm_model: openai/fake-bench-model, api_base: 'http://127.0.0.1:1/v1', priority: 0}",
        f"      - {{litellm_model: openai/fake-bench-model, api_base: '{openai_base}', priority: 1}}",
        f"      - {{litellm_model: openai/fake-bench-model, api_base: '{openai_base}', priority: 1}}",
    ]
    return "\n".join(lines) + "\n"


def on_both_paths(name: str, litellm_model: str, api_base: str) -> list[str]:
    """The policy lines of one model twice: `name` on the gateway's own path, `name-litellm` through LiteLLM."""
    lines = []
    for suffix, use_litellm in (("", "false"), ("-litellm", "true")):
        lines += [f"  {name}{suffix}:", f"    litellm_model: {litellm_model}", f"    api_base: {api_base}",
                  f"    use_litellm: {use_litellm}"]  # fmt: skip
    return lines


def cases() -> list[EndpointCase]:
    """The translated Anthropic chat rows first: the worker's peak memory is read after them (MEMORY_CHECKPOINT),
    before any call goes through litellm.acompletion or its adapters."""
    found = [anthropic_chat_case("translated", "", stream) for stream in (False, True)]
    for label, suffix in (("direct", ""), ("through LiteLLM", "-litellm")):
        found.append(EndpointCase(f"embeddings ({label})", "/v1/embeddings", f"bench-embed{suffix}",
                                  {"model": f"bench-embed{suffix}", "input": EMBEDDING_INPUT}, False))  # fmt: skip
    for label, suffix in (("native relay", ""), ("LiteLLM's Anthropic adapter", "-litellm")):
        body = {"model": f"bench-claude{suffix}", "max_tokens": 256, "messages": MESSAGES, "stream": True}
        found.append(EndpointCase(f"messages stream ({label})", "/v1/messages", f"bench-claude{suffix}", body, True))
    found += [anthropic_chat_case("litellm.acompletion", "-litellm", stream) for stream in (False, True)]
    for label, model in (
        ("1 deployment", "bench-one"),
        ("3 deployments, the first dead: every call fails over", "bench-ha"),
    ):
        body = {"model": model, "messages": MESSAGES}
        found.append(EndpointCase(f"chat ({label})", "/v1/chat/completions", model, body, False))
    return found


MEMORY_CHECKPOINT = 2  # cases run before the worker's peak memory is read: the translated Anthropic chat rows


def anthropic_chat_case(label: str, suffix: str, stream: bool) -> EndpointCase:
    model = f"bench-claude-chat{suffix}"
    kind = "20-chunk stream" if stream else "json"
    body = {"model": model, "messages": MESSAGES, "max_tokens": 256}
    return EndpointCase(f"chat, Anthropic model, {kind} ({label})", "/v1/chat/completions", model, body, stream)


def table_header() -> list[str]:
    return ["| endpoint call | c | req/s | p50 ms | p99 ms | TTFB p50 ms | CPU ms/req | errors |", "|" + " --- |" * 8]


def table_row(case: EndpointCase, concurrency: int, result: dict) -> str:
    return (f"| {case.label} | {concurrency} | {result['rps']:.0f} | {result['p50']:.2f} | {result['p99']:.2f} | "
            f"{result['ttfb']:.2f} | {result['cpu_ms']:.2f} | {result['failures']} |")  # fmt: skip
