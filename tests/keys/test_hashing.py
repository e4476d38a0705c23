from keys.hashing import display_prefix, generate_key, hash_key, hashes_match, looks_like_key


def test_generated_keys_are_unique_prefixed_and_long():
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith("llmp_")
        assert len(key) >= len("llmp_") + 32
        assert looks_like_key(key)


def test_hash_is_sha256_hex_and_matches_only_the_same_key():
    key = generate_key()
    digest = hash_key(key)
    assert len(digest) == 64 and key not in digest
    assert hashes_match(digest, key)
    assert not hashes_match(digest, generate_key())


def test_display_prefix_does_not_reveal_the_key():
    key = generate_key()
    assert key.startswith(display_prefix(key))
    assert len(display_prefix(key)) <= 12


def test_malformed_tokens_are_recognised():
    assert not looks_like_key("sk-1234567890abcdefghijkl")
    assert not looks_like_key("llmp_short")
    assert not looks_like_key("llmp_ünïcødé-ünïcødé-ünïcødé")
