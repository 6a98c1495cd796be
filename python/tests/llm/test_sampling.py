from archloop.llm.sampling import Choice, Sampling, cut_at_stop, generate_kwargs, make_choice, split_row

EOS = {2}


def sampling(**kw) -> Sampling:
    return Sampling(**({"n": 1, "temperature": 0.7, "top_p": 0.95, "top_k": 100, "max_tokens": 8} | kw))


def test_temperature_zero_is_greedy_and_ignores_other_knobs():
    kwargs = generate_kwargs(sampling(temperature=0))
    assert kwargs["do_sample"] is False and kwargs["top_k"] is None and kwargs["max_new_tokens"] == 8


def test_top_k_disabled_by_minus_one_or_zero():
    assert generate_kwargs(sampling(top_k=-1))["top_k"] is None
    assert generate_kwargs(sampling(top_k=0))["top_k"] is None
    assert generate_kwargs(sampling(top_k=100)) == {"max_new_tokens": 8, "do_sample": True,
                                                         "temperature": 0.7, "top_p": 0.95, "top_k": 100}


def test_cut_at_earliest_stop():
    assert cut_at_stop("a\n\nb END c", ("END", "\n\n")) == ("a", True)
    assert cut_at_stop("abc", ("x",)) == ("abc", False)
    assert cut_at_stop("abc", ()) == ("abc", False)


def test_split_row_at_first_end_token():
    assert split_row([5, 6, 2, 2, 2], EOS) == ([5, 6], True)
    assert split_row([5, 6, 7], EOS) == ([5, 6, 7], False)


def decode(tokens):
    return "".join(chr(ord("a") + t) for t in tokens)


def test_choice_finish_reasons_and_token_counts():
    assert make_choice([0, 1, 2, 2], EOS, decode, sampling()) == Choice("ab", "stop", 3)  # EOS is generated too
    assert make_choice([0, 1, 3], EOS, decode, sampling()).finish_reason == "length"
    stopped = make_choice([0, 1, 3, 2], EOS, decode, sampling(stop=("b",)))
    assert (stopped.text, stopped.finish_reason, stopped.completion_tokens) == ("a", "stop", 3)
