"""Issue 20: the shop world's data, the chat template, the SFT mask, the DPO loss, and tiny sft/dpo runs."""

from __future__ import annotations

import json
import math
import os
import random
import re

import numpy as np
import pytest

from tfzoo.data import assistant_world as aw
from tfzoo.data.chat_template import ChatTemplateError, ChatTokenizer, render_conversation
from tfzoo.data.errors import DatasetError
from tfzoo.data.text_datasets import load_text_splits
from tfzoo.data.tokenizers import build_tokenizer, load_tokenizer


@pytest.fixture(scope="module")
def world():
    return aw.make_world(0)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer("chat:byte", "")


def _dialogue_text(conversations, roles=("user", "assistant", "system")) -> str:
    return "\n".join(m.content for c in conversations for m in c.messages if m.role in roles)


# ---- the world and its data ----------------------------------------------------------------------


def test_the_world_and_its_data_depend_only_on_the_seed(world):
    again = aw.make_world(0)
    assert again == world
    assert aw.make_world(1) != world
    assert aw.dialogues(again, "train", count=50) == aw.dialogues(world, "train", count=50)
    assert aw.dialogues(world, "train", count=50, seed=1) != aw.dialogues(world, "train", count=50)
    assert aw.preference_pairs(again, "validation", count=20) == aw.preference_pairs(world, "validation", count=20)
    assert aw.documents(again, size=20_000) == aw.documents(world, size=20_000)
    assert aw.documents(aw.make_world(1), size=20_000) != aw.documents(world, size=20_000)
    assert len({p.name for p in world.products}) == len(world.products) == aw.NUM_PRODUCTS
    with pytest.raises(DatasetError, match="split must be"):
        aw.dialogues(world, "test", count=1)


def _held_out_words(text: str) -> set[str]:
    return {w for w in aw.held_out_parts() if re.search(rf"\b{w}\b", text)}


def test_no_held_out_name_part_or_phrasing_occurs_in_any_training_text(world):
    train = aw.dialogues(world, "train", count=2000)
    validation = aw.dialogues(world, "validation", count=300)
    pairs = aw.preference_pairs(world, "train", count=500)
    documents, validation_documents = aw.documents(world)
    assert not _held_out_words(_dialogue_text(train))
    pair_text = "\n".join(m.content for p in pairs for m in p.prompt) + "".join(p.rejected for p in pairs)
    assert not _held_out_words(pair_text)
    assert not _held_out_words(documents)
    assert not _held_out_words(" ".join(p.name for p in world.seen))
    # ... while every validation product, and every held-out sample product, is named with one.
    held_out_text = _dialogue_text(validation) + validation_documents
    assert _held_out_words(held_out_text) == set(aw.held_out_parts())
    about = [t.product for c in validation for t in c.turns if t.product]
    assert about and all(p.split()[0] in aw.HELD_OUT_COLOURS for p in about)
    assert all(p.name.split()[0] in aw.HELD_OUT_COLOURS for p in world.held_out)
    train_questions = {m.content for c in train for m in c.messages if m.role == "user"}
    for intent in aw.USER_TEMPLATES:
        for template in aw.user_phrasings(intent, "validation"):
            pattern = re.escape(template).replace(r"\{p\}", ".+").replace(r"\{d\}", ".+").replace(r"\{x\}", ".+")
            assert not any(re.fullmatch(pattern, q) for q in train_questions), template
        assert not set(aw.user_phrasings(intent, "validation")) & set(aw.user_phrasings(intent, "train"))


def test_half_of_training_colours_and_kinds_are_invented_words_and_validation_has_none():
    rng = random.Random(3)
    train = [aw.product_name(rng, "train").split() for _ in range(2000)]
    validation = [aw.product_name(rng, "validation").split() for _ in range(500)]
    for words, listed in (([n[0] for n in train], aw.COLOURS), ([n[-1] for n in train], aw.KINDS)):
        invented = [w for w in words if w not in listed]
        assert 0.45 < len(invented) / len(words) < 0.55
        assert len(set(invented)) > 0.9 * len(invented)  # drawn afresh: hardly any repeats
        assert all(re.fullmatch(r"[A-Z][a-z]{3,6}", w) and w not in aw.held_out_parts() for w in invented)
    listed_parts = set(aw.HELD_OUT_COLOURS + aw.MATERIALS + aw.HELD_OUT_MATERIALS + aw.KINDS + aw.HELD_OUT_KINDS)
    assert all(set(n) <= listed_parts and n[0] in aw.HELD_OUT_COLOURS for n in validation)


def _card(system: str) -> dict[str, tuple[int, int]]:
    items = re.findall(r"(?:Items: |; )([A-Z][A-Za-z ]+?) \$(\d+), (\d+) in stock", system)
    return {name: (int(price), int(stock)) for name, price, stock in items}


def test_every_dialogue_draws_its_own_products_and_the_replies_copy_its_card(world):
    conversations = aw.dialogues(world, "train", count=1000)
    prices: dict[str, set[int]] = {}
    for conversation in conversations + aw.dialogues(world, "validation", count=200):
        card = _card(conversation.messages[0].content)
        assert len(card) in (2, 3)
        for name, (price, _) in card.items():
            prices.setdefault(name, set()).add(price)
        for index, turn in enumerate(conversation.turns):
            reply = conversation.messages[2 + 2 * index].content
            assert aw.reply_is_correct(reply, turn), (reply, turn)
            if turn.intent in ("price", "followup_price"):
                name, price = re.fullmatch(r"The (.+) costs \$(\d+)\.", reply).groups()
                assert name == turn.product and card[name][0] == int(price)  # the card's price, of its product
            if turn.intent in ("stock", "followup_stock"):
                assert turn.product in reply and turn.product in card
                assert turn.fact == ("out of stock" if card[turn.product][1] == 0 else str(card[turn.product][1]))
            if turn.refers_back:  # a follow-up names no product: the earlier user turn did
                question = conversation.messages[1 + 2 * index].content
                assert turn.product not in question and turn.product in conversation.messages[2 * index - 1].content
            if turn.intent == "order":
                number = re.search(r"Order (\d+):", conversation.messages[0].content).group(1)
                assert turn.fact.startswith(number + " ")
            if turn.intent == "unknown":
                assert turn.product not in card and turn.product in reply
    # Fresh entities: hundreds of names, and a name seen twice mostly comes with another price.
    assert len(prices) > 500
    repeated = [p for p in prices.values() if len(p) > 1]
    assert len(repeated) > 50


def test_preference_pairs_share_the_prompt_and_reject_a_flawed_reply(world):
    pairs = aw.preference_pairs(world, "train", count=400)
    assert {p.flaw for p in pairs} == {"wrong_fact", "invented_product", "off_topic", "rude"}
    for pair in pairs:
        assert pair.prompt[-1].role == "user" and pair.prompt[0].role == "system"
        assert pair.chosen != pair.rejected
        if pair.flaw == "wrong_fact":
            assert re.sub(r"\d+", "#", pair.chosen) == re.sub(r"\d+", "#", pair.rejected)
            assert re.findall(r"\d+", pair.chosen) != re.findall(r"\d+", pair.rejected)
        if pair.flaw == "invented_product":
            product = re.search(r"buy the (.+?),", pair.rejected).group(1)
            assert product not in _card(pair.prompt[0].content)


def test_the_documents_restate_their_cards_and_the_spec_loads_them(world):
    train, validation = aw.documents(world)
    assert 1_500_000 < len(train) < 1_700_000 and 40_000 < len(validation) < 70_000
    blocks = train.split("\n\n")
    cards = [b for b in blocks if ". Items: " in b]
    probes = [b for b in blocks if " -> " in b]
    assert 0.4 < len(cards) / len(blocks) < 0.6 and 0.2 < len(probes) / len(blocks) < 0.4
    for block in cards[:500]:
        card_line, *prose = block.split("\n")
        card = _card(card_line)
        assert prose and len(card) in (2, 3)
        for line in prose:  # every restated price is the card's price of the product the line names
            named = [n for n in card if re.search(rf"\b{n}\b", line)]
            for price in re.findall(r"\$(\d+)", line):
                assert int(price) in {card[n][0] for n in named}, (card_line, line)
    splits = load_text_splits("assistant:docs")
    assert splits.train == train and splits.validation == validation
    assert load_text_splits("assistant:docs@1").train != train
    larger = load_text_splits("assistant:docs@0:3.2")  # a larger corpus of the same world, for longer runs
    assert 3_200_000 <= len(larger.train) < 3_201_000 and larger.train.startswith(train.rstrip("\n"))
    assert load_text_splits("assistant:docs:3.2").train == larger.train
    for bad in ("assistant:docs:big", "assistant:docs@0:0"):
        with pytest.raises(DatasetError, match="megabytes"):
            load_text_splits(bad)
    with pytest.raises(DatasetError, match="assistant:nope"):
        load_text_splits("assistant:nope")
    with pytest.raises(DatasetError, match="sft/dpo"):
        load_text_splits("assistant:sft")


def _probe_rules(word: str, shown: str) -> set[tuple[str, str]]:
    """The (rule, suffix) pairs that map `word` to `shown`."""
    found = {(n, "") for n in ("upper", "double") if aw._PROBE_RULES[n](word, "") == shown}
    if shown.startswith(word) and len(shown) == len(word) + 2:
        found.add(("suffix", shown[len(word) :]))
    return found


def test_probe_answers_follow_the_rule_its_examples_show():
    for shots in (0, 1, 4, 8):
        examples = aw.probe_examples(0, shots, count=30)
        assert len(examples) == 30
        assert aw.probe_examples(1, shots, count=30) != examples
        for prompt, answer in examples:
            lines = prompt.split("\n")
            assert len(lines) == shots + 1 and lines[-1].endswith(" -> ")
            query = lines[-1][: -len(" -> ")]
            rules = _probe_rules(query, answer)
            for line in lines[:-1]:  # every example agrees with a rule that gives the answer
                word, shown = line.split(" -> ")
                rules &= _probe_rules(word, shown)
            assert rules and (shots == 0 or len(rules) == 1)  # one example is enough to tell the rule


# ---- the chat template ---------------------------------------------------------------------------


def test_the_template_renders_role_tokens_and_the_assistant_mask(tokenizer):
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
        {"role": "user", "content": "?"},
    ]
    ids, mask = render_conversation(tokenizer, messages, add_generation_prompt=True)
    s, u, a = (tokenizer.role_id(r) for r in ("system", "user", "assistant"))
    expected = [s, *tokenizer.encode("S"), u, *tokenizer.encode("hi"), a, *tokenizer.encode("yo"), 1]
    expected += [u, *tokenizer.encode("?"), a]
    assert ids.tolist() == expected
    assert mask.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert tokenizer.decode(ids) == "Shiyo?"
    assert tokenizer.decode_with_roles(ids) == "<|system|>S<|user|>hi<|assistant|>yo<|user|>?<|assistant|>"


def test_the_template_refuses_bad_messages_in_one_line(tokenizer):
    cases = {
        "unknown role 'robot'": [{"role": "robot", "content": "x"}],
        "message 1 \\(user\\) is empty": [{"role": "system", "content": "x"}, {"role": "user", "content": "  "}],
        "has no text content": [{"role": "user", "content": None}],
        "no messages": [],
        "longer than the model's context of 5": [{"role": "user", "content": "a long question"}],
    }
    for message, messages in cases.items():
        with pytest.raises(ChatTemplateError, match=message) as error:
            render_conversation(tokenizer, messages, max_length=5)
        assert "\n" not in str(error.value)
    with pytest.raises(ChatTemplateError, match="not a chat tokenizer"):
        render_conversation(build_tokenizer("byte", ""), [{"role": "user", "content": "x"}])


def test_the_chat_template_is_stored_with_the_tokenizer(tmp_path):
    for name in ("chat:byte", "chat:char"):
        tokenizer = build_tokenizer(name, "hello world")
        folder = tmp_path / name.replace(":", "_")
        tokenizer.save(str(folder))
        data = json.loads((folder / "tokenizer.json").read_text())
        assert data["type"] == "chat" and data["base"]["type"] == name[5:]
        assert data["chat_template"]["roles"] == {
            "system": data["base"]["vocabulary_size"],
            "user": data["base"]["vocabulary_size"] + 1,
            "assistant": data["base"]["vocabulary_size"] + 2,
        }
        loaded = load_tokenizer(str(folder))
        assert isinstance(loaded, ChatTokenizer) and loaded == tokenizer
        assert loaded.vocabulary_size == tokenizer.base.vocabulary_size + 3
        data["chat_template"]["roles"]["user"] = 0
        (folder / "tokenizer.json").write_text(json.dumps(data))
        with pytest.raises(ValueError, match="chat_template.roles"):
            load_tokenizer(str(folder))
    with pytest.raises(ValueError, match="chat:byte"):
        build_tokenizer("chat", "")


# ---- the SFT rows and the DPO loss ---------------------------------------------------------------


def test_sft_labels_are_exactly_the_assistant_tokens(world, tokenizer):
    from tfzoo.training.assistant_tasks import pack_conversations

    conversations = aw.dialogues(world, "train", count=60)
    inputs, labels, dropped = pack_conversations(tokenizer, conversations, seq_len=1024)
    assert dropped == 0 and len(inputs) < len(conversations)  # several conversations share a row
    # What must be trained: every assistant reply's bytes and its <eos>; nothing else. (First fit
    # places a conversation in the first row with room, so compare per conversation, in any order.)
    wanted = sorted(
        tuple(t for m in c.messages if m.role == "assistant" for t in [*tokenizer.encode(m.content), tokenizer.eos_id])
        for c in conversations
    )
    found = []
    for row_inputs, row_labels in zip(inputs, labels):
        starts = np.flatnonzero(row_inputs == tokenizer.role_id("system"))  # each conversation opens so
        for start, end in zip(starts, [*starts[1:], len(row_inputs)]):
            part = row_labels[start:end]
            found.append(tuple(int(t) for t in part[part >= 0]))
    assert sorted(found) == wanted
    # Each label is the next input token (a causal LM; a row's last label has no next input), and no
    # label sits on padding.
    rows, cols = np.nonzero(labels[:, :-1] >= 0)
    following = inputs[rows, cols + 1]
    real = following != tokenizer.pad_id
    assert np.array_equal(labels[rows, cols][real], following[real])
    assert np.all(labels[rows, cols][~real] == tokenizer.eos_id)
    assert not np.any((inputs == tokenizer.pad_id) & (labels >= 0))
    role_ids = set(tokenizer.roles.values())
    assert not role_ids & set(labels[labels >= 0].tolist())


def test_dpo_loss_matches_a_numpy_reference():
    from tfzoo.training.losses import DpoLoss, dpo_losses, pack_dpo_targets

    rng = np.random.default_rng(0)
    pc, pr, rc, rr = (rng.normal(-20, 5, 6).astype(np.float32) for _ in range(4))
    for beta in (0.1, 0.5):
        expected = np.log1p(np.exp(-beta * ((pc - rc) - (pr - rr))))  # -log sigmoid(x)
        np.testing.assert_allclose(np.asarray(dpo_losses(pc, pr, rc, rr, beta)), expected, rtol=1e-5)
    # Through the packed targets: two pairs, logits chosen so each row's log-probability is known.
    logits = np.log(np.float32([[[0.5, 0.5], [0.9, 0.1]], [[0.2, 0.8], [0.5, 0.5]]] * 2))  # (4, 2, 2)
    labels = np.array([[0, 1], [1, -1], [1, 0], [-1, 0]])
    policy = np.log(np.float32([0.5 * 0.1, 0.8, 0.5 * 0.9, 0.5]))
    reference = np.float32([-2.0, -1.0, -0.5, -3.0])
    loss = DpoLoss(beta=0.5)(pack_dpo_targets(labels, reference), logits)
    margins = 0.5 * ((policy[0::2] - reference[0::2]) - (policy[1::2] - reference[1::2]))
    assert float(loss) == pytest.approx(float(np.mean(np.log1p(np.exp(-margins)))), rel=1e-5)


def test_dpo_plus_nll_adds_the_chosen_replys_mean_token_nll():
    from tfzoo.training.losses import DpoLoss, pack_dpo_targets

    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (4, 5, 7)).astype(np.float32)  # two pairs, rows chosen, rejected
    labels = np.array([[1, 2, -1, -1, -1], [3, -1, -1, -1, -1], [4, 5, 6, -1, -1], [0, 1, -1, -1, -1]])
    reference = rng.normal(-8, 1, 4).astype(np.float32)
    log_softmax = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    token_lp = [[log_softmax[r, t, labels[r, t]] for t in range(5) if labels[r, t] >= 0] for r in range(4)]
    policy = np.array([sum(lp) for lp in token_lp])
    margins = 0.1 * ((policy[0::2] - reference[0::2]) - (policy[1::2] - reference[1::2]))
    dpo = np.log1p(np.exp(-margins))  # (2,)
    nll = np.array([-np.mean(token_lp[0]), -np.mean(token_lp[2])])  # chosen rows, per token
    y = pack_dpo_targets(labels, reference)
    for alpha in (0.0, 0.5, 2.0):
        loss = DpoLoss(beta=0.1, nll_weight=alpha)
        assert float(loss(y, logits)) == pytest.approx(float(np.mean(dpo + alpha * nll)), rel=1e-5)
        assert DpoLoss.from_config(loss.get_config()).nll_weight == alpha
    with pytest.raises(ValueError, match="nll_weight"):
        DpoLoss(nll_weight=-1.0)


def test_dpo_loss_is_log_2_where_the_policy_is_the_reference(world, tokenizer):
    from tfzoo.models.gpt import GPT
    from tfzoo.training import assistant_eval
    from tfzoo.training.losses import DpoLoss, pack_dpo_targets

    model = GPT(vocabulary_size=tokenizer.vocabulary_size, num_layers=1, num_heads=2, hidden_dim=16,
                intermediate_dim=32, max_sequence_length=384)  # fmt: skip
    pairs = aw.preference_pairs(world, "train", count=4)
    x, y, kept = assistant_eval.pair_rows(tokenizer, pairs, 384)
    assert len(kept) == 4 and x.shape == (8, 384)
    reference = assistant_eval.pair_log_probs(model, x, y)
    assert np.all(reference < 0)
    loss = DpoLoss(beta=0.1)(pack_dpo_targets(y, reference), model(x))
    assert float(loss) == pytest.approx(math.log(2), abs=1e-4)


# ---- tiny runs -----------------------------------------------------------------------------------


def _tiny(config, workdir, **fields):
    config.update(
        num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, batch_size=8, eval_steps=2,
        eval_dialogues=4, eval_pairs=4, warmup_steps=2, jit_compile=False,
    )  # fmt: skip
    config.update(fields)
    return config


def test_tiny_sft_then_dpo_runs_train_and_log_the_measures(tmp_path):
    from tfzoo.config_files import load_config_file
    from tfzoo.training.train_lib import train_and_evaluate

    def get_config(name):
        return load_config_file(os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", f"{name}.py"))

    sft_dir, dpo_dir = str(tmp_path / "sft"), str(tmp_path / "dpo")
    config = _tiny(get_config("assistant_sft"), sft_dir, init_from="", sft_dialogues=300,
                   train_steps=40, eval_every=20, learning_rate=3e-3)  # fmt: skip
    train_and_evaluate(config, sft_dir)
    records = [json.loads(line) for line in open(os.path.join(sft_dir, "metrics.jsonl"))]
    assert [r["step"] for r in records] == [20, 40]
    assert records[1]["train_loss"] < records[0]["train_loss"] and records[1]["val_loss"] < records[0]["val_loss"]
    for name in ("answer_accuracy", "refusal_accuracy", "followup_accuracy", "preference_accuracy"):
        assert name in records[-1]
    saved = json.loads(open(os.path.join(sft_dir, "tokenizer", "tokenizer.json")).read())
    assert saved["type"] == "chat" and "chat_template" in saved

    config = _tiny(get_config("assistant_dpo"), dpo_dir, init_from=sft_dir, preference_pairs=40,
                   train_steps=4, eval_every=2, learning_rate=1e-3, dpo_nll_weight=1.0)  # fmt: skip
    train_and_evaluate(config, dpo_dir)
    records = [json.loads(line) for line in open(os.path.join(dpo_dir, "metrics.jsonl"))]
    assert [r["step"] for r in records] == [2, 4]
    assert all(0 < r["val_loss"] < 2 for r in records) and "reward_accuracy" in records[-1]
    assert all(math.isfinite(records[-1][f"{side}_log_prob_shift"]) for side in ("chosen", "rejected"))
    with pytest.raises(ValueError, match="dpo_nll_weight must be a number >= 0"):
        train_and_evaluate(_tiny(get_config("assistant_dpo"), dpo_dir, dpo_nll_weight=-1.0), str(tmp_path / "y"))
    with pytest.raises(ValueError, match="needs init_from"):
        train_and_evaluate(_tiny(get_config("assistant_dpo"), dpo_dir, init_from=""), str(tmp_path / "x"))


def test_followups_are_resolved_when_the_reply_names_the_earlier_product(world):
    from tfzoo.training.assistant_eval import _share_naming

    conversations = aw.dialogues(world, "validation", count=100)
    prompts = [(None, t, c.messages[2 + 2 * i].content) for c in conversations for i, t in enumerate(c.turns)]
    followups = [t for _, t, _ in prompts if t.refers_back]
    assert followups and _share_naming(prompts, [ref for _, _, ref in prompts]) == 1.0
    name = followups[0].product  # every reply names this one product
    named = _share_naming(prompts, [f"The {name} costs $1."] * len(prompts))
    assert named == round(float(np.mean([t.product == name for t in followups])), 3) < 1.0
