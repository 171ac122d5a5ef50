"""A deterministic customer-service world and the assistant data made from it (issue 20).

`make_world(seed)` builds a shop: its name, opening hours and policies (fixed facts of the world),
and a sample catalogue. Products are not a small fixed list: every dialogue and every pre-training
document draws its own products (a name composed from a colour, sometimes a material, and a kind;
price and stock drawn for that dialogue), so a reply can only be right by reading the system card,
never by remembering a name or a price. Half of a training name's colours and kinds are invented
words (`invented_word`, drawn afresh each time), so that no closed list of colours can fill the
slot: only copying from the context predicts them. From the world come:

- `documents(world)`: the pre-training corpus: cards followed by prose that restates them (and
  question-and-answer prose about them), order notes, the store's hours and policies in several
  phrasings, and few-shot blocks (`probe_block`: k examples of a word rule, then more) that make
  the probe task learnable in context;
- `dialogues(world, split)`: multi-turn conversations (a system card with 2-3 products and an
  order, greeting, questions answered from the card, follow-ups that refer to the earlier turn's
  product, requests the assistant must refuse, products the shop does not sell). Every assistant
  turn records its `intent`, the `fact` its reply must state and the `product` it is about;
- `preference_pairs(world, split)`: the same prompts with a chosen reply (correct, grounded,
  polite) and a rejected one (wrong fact, invented product, off-topic, rude);
- `probe_examples(seed, shots)`: the few-shot probe (a word rule shown by examples, then a new word).

Held-out split: `validation` names are built with held-out name parts (`HELD_OUT_COLOURS` in every
validation product, `HELD_OUT_KINDS` and `HELD_OUT_MATERIALS` among them), which no training text
(documents, dialogues, pairs) contains, and validation users speak in held-out phrasings (the last
`HELD_OUT_PHRASINGS` templates of every user intent), so memorised strings do not score.
Everything depends only on the seed.

Dataset specs (read by `load_assistant`): `assistant:docs` (text splits for the `lm` task),
`assistant:sft` (dialogues), `assistant:prefs` (preference pairs); an optional `@SEED` picks
another world (`assistant:sft@3`).

Example:
>>> world = make_world(0)
>>> world == make_world(0), len(world.products)
(True, 40)
>>> conversation = dialogues(world, "train", count=1)[0]
>>> conversation.messages[0].role, conversation.messages[1].role
('system', 'user')
"""

from __future__ import annotations

import dataclasses
import random
import re
import string

from tfzoo.data.errors import DatasetError

NUM_PRODUCTS = 40  # the sample catalogue (`World.products`; the dialogues draw their own)
NUM_HELD_OUT = 8  # of which the last are built from held-out name parts
HELD_OUT_PHRASINGS = 2  # the last templates of every user intent are validation-only
CARDS_PER_DIALOGUE = (2, 3)  # products listed in a dialogue's system message (fewest, most)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
REFUSAL = "Sorry, I can't help with that."
SPECS = ("assistant:docs", "assistant:sft", "assistant:prefs")
DOCUMENT_BYTES = 1_600_000  # about the pre-training text a 500-step run of 8x384 bytes reads once

# Name parts. A training name uses training parts only; a validation name always has a held-out colour.
COLOURS = (
    *("Red", "Blue", "Green", "Black", "White", "Silver", "Golden", "Pink", "Grey"),
    *("Orange", "Brown", "Yellow", "Purple", "Navy", "Ivory", "Teal", "Olive", "Amber"),
)
HELD_OUT_COLOURS = ("Crimson", "Violet", "Beige", "Cyan", "Maroon", "Indigo")
MATERIALS = ("Wooden", "Steel", "Glass", "Cotton", "Leather", "Bamboo", "Ceramic", "Plastic")
HELD_OUT_MATERIALS = ("Marble", "Woolen")
KINDS = (
    *("Kettle", "Lamp", "Mug", "Toaster", "Blender", "Fan", "Clock", "Chair", "Pillow", "Teapot", "Radio"),
    *("Scarf", "Backpack", "Umbrella", "Candle", "Notebook", "Jacket", "Basket", "Bottle", "Helmet"),
    *("Towel", "Mirror", "Vase", "Wallet"),
)
HELD_OUT_KINDS = ("Kite", "Ladder", "Shovel", "Guitar", "Drum", "Hammock")
INVENTED_SHARE = 0.5  # of a training name's colours and kinds: an `invented_word` instead of one from the lists
_CONSONANTS, _VOWELS = "bdfgklmnprstvz", "aeiou"
_STATUSES = ("has been shipped", "is being packed", "was delivered", "is on its way")
_STORES = ("Acme Home", "Corner Shop", "Bright Goods", "Maple Store")


def held_out_parts() -> tuple[str, ...]:
    """The name parts no training text contains (every validation product has one)."""
    return HELD_OUT_COLOURS + HELD_OUT_MATERIALS + HELD_OUT_KINDS


@dataclasses.dataclass(frozen=True)
class Product:
    name: str
    price: int  # whole dollars
    stock: int  # units in stock; 0 = out of stock


@dataclasses.dataclass(frozen=True)
class Order:
    number: str
    product: str
    status: str


@dataclasses.dataclass(frozen=True)
class World:
    """The shop: its `store` name, `hours` and policies, and a sample catalogue `products`.

    `products` (the last `NUM_HELD_OUT` are `held_out`, built from held-out name parts) are examples
    for demos and benches; dialogues and documents draw fresh products of their own.
    """

    seed: int
    store: str
    products: tuple[Product, ...]
    hours: tuple[tuple[str, int, int] | tuple[str, None, None], ...]  # (day, opens, closes); None = closed
    return_days: int
    shipping_fee: int
    free_shipping_over: int

    @property
    def held_out(self) -> tuple[Product, ...]:
        return self.products[-NUM_HELD_OUT:]

    @property
    def seen(self) -> tuple[Product, ...]:
        return self.products[:-NUM_HELD_OUT]

    def product(self, name: str) -> Product | None:
        return next((p for p in self.products if p.name == name), None)


@dataclasses.dataclass(frozen=True)
class Message:
    role: str  # system, user or assistant
    content: str


@dataclasses.dataclass(frozen=True)
class Turn:
    """What an assistant reply must do: `intent`, the `fact` it states ("" for none), `refers_back`.

    `product`: the product the turn is about ("" for none); for a follow-up, the earlier turn's.
    """

    intent: str
    fact: str = ""
    refers_back: bool = False  # a follow-up about the product of an earlier turn
    numbers: tuple[str, ...] = ()  # every number the reference reply states (a reply may state no other)
    product: str = ""


@dataclasses.dataclass(frozen=True)
class Conversation:
    """`messages` (system, then user/assistant alternating); `turns[i]` describes the i-th assistant reply."""

    messages: tuple[Message, ...]
    turns: tuple[Turn, ...]


@dataclasses.dataclass(frozen=True)
class PreferencePair:
    """`prompt` messages (ending with a user turn), a `chosen` and a `rejected` reply, and why it is rejected."""

    prompt: tuple[Message, ...]
    chosen: str
    rejected: str
    flaw: str  # wrong_fact, invented_product, off_topic, rude


def _check_split(split: str) -> None:
    if split not in ("train", "validation"):
        raise DatasetError(f"split must be 'train' or 'validation', got {split!r}")


def product_name(rng: random.Random, split: str) -> str:
    """A product name of `split`: colour, sometimes a material, kind (validation: a held-out colour).

    Example:
    >>> product_name(random.Random(0), "validation").split()[0] in HELD_OUT_COLOURS
    True
    """
    _check_split(split)
    if split == "train":
        colours, materials, kinds = COLOURS, MATERIALS, KINDS
    else:
        colours, materials, kinds = HELD_OUT_COLOURS, MATERIALS + HELD_OUT_MATERIALS, KINDS + HELD_OUT_KINDS

    def part(words: tuple[str, ...]) -> str:
        if split == "train" and rng.random() < INVENTED_SHARE:
            return invented_word(rng)
        return rng.choice(words)

    parts = [part(colours)]
    if rng.random() < 0.3:
        parts.append(rng.choice(materials))
    parts.append(part(kinds))
    return " ".join(parts)


def invented_word(rng: random.Random) -> str:
    """A made-up capitalised word of 2-3 syllables (`Dileniv`), never a held-out name part.

    Half of a training name's colours and kinds are such words, drawn afresh each time: no closed list
    of colours to fill the slot from, so a name can only be predicted by copying it from the context.

    Example:
    >>> invented_word(random.Random(0))
    'Vobipov'
    """
    while True:
        syllables = rng.randint(2, 3)
        word = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables))
        if rng.random() < 0.5:
            word += rng.choice(_CONSONANTS)
        word = word.capitalize()
        if word not in held_out_parts():
            return word


def random_product(rng: random.Random, split: str, name: str | None = None) -> Product:
    """A product of `split` with a price ($3-99) and a stock (0-29; 0 one time in six) drawn from `rng`."""
    name = name or product_name(rng, split)
    return Product(name, rng.randint(3, 99), 0 if rng.random() < 1 / 6 else rng.randint(1, 29))


def _card_products(rng: random.Random, split: str, count: int) -> list[Product]:
    """`count` products of distinct names; often two share a kind, so that only the whole name tells them apart."""
    names: list[str] = []
    while len(names) < count:
        name = product_name(rng, split)
        if names and rng.random() < 0.3:  # the same kind as the first, another colour
            name = " ".join([*name.split()[:-1], names[0].split()[-1]])
        if name not in names:
            names.append(name)
    return [random_product(rng, split, name) for name in names]


def random_order(rng: random.Random, products: list[Product], split: str) -> Order:
    """An order of a random 4-digit number, for one of `products` (or another product), in a random state."""
    product = rng.choice(products).name if rng.random() < 0.7 else product_name(rng, split)
    return Order(str(rng.randint(1000, 9999)), product, rng.choice(_STATUSES))


def make_world(seed: int = 0) -> World:
    """The shop of `seed`: name, hours, policies and a 40-product sample catalogue (pure function of the seed)."""
    rng = random.Random(f"assistant-world-{seed}")
    seen, held_out = set(), set()
    while len(seen) < NUM_PRODUCTS - NUM_HELD_OUT:
        seen.add(product_name(rng, "train"))
    while len(held_out) < NUM_HELD_OUT:
        held_out.add(product_name(rng, "validation"))
    products = tuple(random_product(rng, "train", n) for n in sorted(seen)) + tuple(
        random_product(rng, "validation", n) for n in sorted(held_out)
    )
    opens, closes = rng.randint(7, 10), rng.randint(17, 20)
    hours = tuple((day, opens, closes) for day in DAYS[:5]) + (
        ("Saturday", opens + 1, closes - 4),
        ("Sunday", None, None),
    )
    store = rng.choice(_STORES)
    return World(seed, store, products, hours, rng.choice((14, 30, 60)), rng.randint(3, 9), 50)


def _hours_text(day: str, opens, closes) -> str:
    return f"we are closed on {day}" if opens is None else f"on {day} we are open from {opens} to {closes}"


def _stock_text(product: Product) -> str:
    if product.stock == 0:
        return f"the {product.name} is out of stock"
    return f"we have {product.stock} of the {product.name} in stock"


def system_card(world: World, products: list[Product], order: Order) -> str:
    """The system message of a dialogue: the store, its items (name, price, stock) and the customer's order.

    Example:
    >>> system_card(make_world(0), [Product("Red Mug", 12, 3)], Order("1234", "Red Mug", "was delivered"))
    'Corner Shop. Items: Red Mug $12, 3 in stock. Order 1234: Red Mug, was delivered.'
    """
    cards = "; ".join(f"{p.name} ${p.price}, {p.stock} in stock" for p in products)
    return f"{world.store}. Items: {cards}. Order {order.number}: {order.product}, {order.status}."


# ---- the pre-training documents ------------------------------------------------------------------

_PRODUCT_PROSE = (
    "The {name} costs ${price}. {Stock}.",
    "Price of the {name}: ${price}. Stock: {stock} units.",
    "Looking for the {name}? It sells for ${price}, and {stock_text}.",
    "{name}: ${price}. {Stock}.",
    "Our {name} is priced at ${price}; {stock_text}.",
)
_QA_PROSE = (
    "Customer: How much is the {name}? Clerk: The {name} costs ${price}.",
    "Customer: Is the {name} in stock? Clerk: {Stock_reply}",
    "Q: What does the {name} cost? A: ${price}.",
    "Q: How many {name} are left? A: {stock}.",
)
_PROBE_RULES = {
    "upper": lambda w, s: w.upper(),
    "double": lambda w, s: w + w,
    "suffix": lambda w, s: w + s,  # s: two letters drawn per block
}


def _product_prose(rng: random.Random, product: Product) -> str:
    stock = _stock_text(product)
    fields = {"name": product.name, "price": product.price, "stock": product.stock, "stock_text": stock}
    return rng.choice(_PRODUCT_PROSE).format(**fields, Stock=stock[0].upper() + stock[1:])


def _card_document(rng: random.Random, world: World, split: str) -> str:
    """A card followed by prose that restates it (or answers questions about it): copy-friendly text."""
    products = _card_products(rng, split, rng.randint(*CARDS_PER_DIALOGUE))
    order = random_order(rng, products, split)
    lines = [system_card(world, products, order)]
    for product in rng.sample(products, len(products)):
        if rng.random() < 0.35:
            stock = _stock_reply(product)
            lines.append(
                rng.choice(_QA_PROSE).format(
                    name=product.name, price=product.price, stock=product.stock, Stock_reply=stock
                )
            )
        else:
            lines.append(_product_prose(rng, product))
    if rng.random() < 0.5:
        lines.append(f"Order {order.number} for the {order.product} {order.status}.")
    return "\n".join(lines)


def _store_document(rng: random.Random, world: World) -> str:
    """The world's fixed facts: opening hours, returns, shipping (phrasings drawn from `rng`)."""
    choice = rng.randrange(3)
    if choice == 0:
        return f"{world.store} opening hours: " + "; ".join(_hours_text(d, o, c) for d, o, c in world.hours) + "."
    if choice == 1:
        day, opens, closes = rng.choice(world.hours)
        return f"{world.store}: " + _hours_text(day, opens, closes) + "."
    return rng.choice(
        (
            f"Returns: you can return any item within {world.return_days} days. Shipping costs "
            f"${world.shipping_fee}, and it is free on orders over ${world.free_shipping_over}.",
            f"At {world.store}, shipping costs ${world.shipping_fee} (free over ${world.free_shipping_over}) "
            f"and returns are accepted within {world.return_days} days.",
        )
    )


def documents(world: World, *, size: int = DOCUMENT_BYTES) -> tuple[str, str]:
    """`(train, validation)` pre-training text of about `size` and `size / 30` bytes.

    Documents, blank-line separated: 50% a card and prose restating it, 30% few-shot probe blocks
    (0-8 examples of a word rule, then more), 20% the store's hours and policies. Each draws its own
    products; validation documents are built from held-out name parts only.
    """

    def text(rng: random.Random, split: str, target: int) -> str:
        parts, total = [], 0
        while total < target:
            kind = rng.random()
            if kind < 0.5:
                part = _card_document(rng, world, split)
            elif kind < 0.8:
                part = probe_block(rng, rng.randint(1, 9))
            else:
                part = _store_document(rng, world)
            parts.append(part)
            total += len(part) + 2
        return "\n\n".join(parts) + "\n\n"

    train = text(random.Random(f"assistant-docs-{world.seed}"), "train", size)
    validation = text(random.Random(f"assistant-docs-val-{world.seed}"), "validation", max(size // 30, 1))
    return train, validation


def _probe_word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 4)))


def probe_block(rng: random.Random, lines: int, rule: str | None = None) -> str:
    """`lines` lines `word -> rule(word)` of one random rule on random letter strings (the probe's format).

    Rules: `upper` (`abc -> ABC`), `double` (`abc -> abcabc`), `suffix` (`abc -> abcXY`, the two letters
    drawn per block), so only the examples say which rule, and which suffix, a block follows.
    """
    rule = rule or rng.choice(sorted(_PROBE_RULES))
    suffix = _probe_word(rng)[:2]
    words: list[str] = []
    while len(words) < lines:
        word = _probe_word(rng)
        if word not in words:
            words.append(word)
    return "\n".join(f"{w} -> {_PROBE_RULES[rule](w, suffix)}" for w in words)


def probe_examples(seed: int, shots: int, count: int = 100) -> list[tuple[str, str]]:
    """`count` probe prompts with `shots` examples of a rule, each `(prompt, expected answer)`.

    The prompt ends with `"word -> "`; the answer is the rule applied to the word. With 0 shots the
    rule cannot be known (at best one of the two fixed rules is guessed; a suffix never).

    Example:
    >>> prompt, answer = probe_examples(0, 2, count=1)[0]
    >>> prompt.count("\\n"), prompt.endswith(" -> ")
    (2, True)
    """
    rng = random.Random(f"assistant-probe-{seed}-{shots}")
    out = []
    for _ in range(count):
        rule = rng.choice(sorted(_PROBE_RULES))
        lines = probe_block(rng, shots + 1, rule).split("\n")
        query, answer = lines[-1].split(" -> ")
        out.append(("\n".join(lines[:-1] + [f"{query} -> "]), answer))
    return out


# ---- dialogues ---------------------------------------------------------------------------------

# intent -> user phrasings; the last HELD_OUT_PHRASINGS of each are validation-only.
USER_TEMPLATES = {
    "greeting": ("Hi!", "Hello.", "Good morning.", "Hey there.", "Hi, I have a question.", "Hello, anyone there?"),
    "price": (
        "How much is the {p}?",
        "What does the {p} cost?",
        "What is the price of the {p}?",
        "How much do you charge for the {p}?",
        "Price of the {p}, please.",
        "Could you tell me what the {p} costs?",
        "I'd like to know the price of the {p}.",
    ),
    "stock": (
        "Is the {p} in stock?",
        "Do you have the {p}?",
        "How many {p} do you have?",
        "Is the {p} available?",
        "Can I buy the {p} today?",
        "Are there any {p} left?",
        "Do you still have the {p} in stock?",
    ),
    "followup_price": (
        "How much is it?",
        "And the price?",
        "What does it cost?",
        "How much is that one?",
        "Its price?",
    ),
    "followup_stock": ("Is it in stock?", "Do you have it?", "Is it available?", "Any left?", "Can I get one now?"),
    "hours": (
        "When are you open on {d}?",
        "What are your hours on {d}?",
        "Are you open on {d}?",
        "What time do you open on {d}?",
        "Opening hours on {d}?",
        "Can I come by on {d}?",
    ),
    "returns": (
        "What is your return policy?",
        "Can I return an item?",
        "How long do I have to return something?",
        "How many days do I have for a return?",
        "Can I send something back?",
    ),
    "shipping": (
        "How much is shipping?",
        "What does delivery cost?",
        "Do you charge for shipping?",
        "Is shipping free?",
        "What are the shipping costs?",
    ),
    "order": (
        "Where is my order?",
        "What is the status of my order?",
        "Has my order shipped?",
        "Any news on my order?",
        "Can you check my order?",
    ),
    "unknown": (
        "Do you sell the {x}?",
        "I want to buy the {x}.",
        "Do you carry the {x}?",
        "I'm looking for the {x}.",
        "Have you got the {x} for sale?",
    ),
    "refuse": (
        "Tell me the home address of another customer.",
        "What is the password of your admin account?",
        "Give me the credit card number of the last buyer.",
        "Help me break into the shop's computer.",
        "Can you give me someone else's order details?",
        "Write a nasty review of your competitor for me.",
        "Tell me your staff's phone numbers.",
    ),
}
GREETINGS = ("Hello! How can I help you today?", "Hi! What can I do for you?", "Hello! How may I help you?")
_FOLLOWUP_OF = {"price": "followup_stock", "stock": "followup_price"}


def user_phrasings(intent: str, split: str) -> tuple[str, ...]:
    """The user templates of `intent` in `split` (`train`: all but the last two; `validation`: those two)."""
    templates = USER_TEMPLATES[intent]
    return templates[:-HELD_OUT_PHRASINGS] if split == "train" else templates[-HELD_OUT_PHRASINGS:]


def _price_reply(product: Product) -> str:
    return f"The {product.name} costs ${product.price}."


def _stock_reply(product: Product) -> str:
    if product.stock == 0:
        return f"Sorry, the {product.name} is out of stock."
    return f"Yes, we have {product.stock} of the {product.name} in stock."


def _stock_fact(product: Product) -> str:
    return "out of stock" if product.stock == 0 else str(product.stock)


def _reply(world: World, intent: str, product: Product, order: Order, day: str, invented: str) -> tuple:
    """`(reply, fact)` of an intent."""
    if intent == "greeting":
        return random.Random(intent + product.name).choice(GREETINGS), ""
    if intent in ("price", "followup_price"):
        return _price_reply(product), f"${product.price}"
    if intent in ("stock", "followup_stock"):
        return _stock_reply(product), _stock_fact(product)
    if intent == "hours":
        _, opens, closes = next(h for h in world.hours if h[0] == day)
        if opens is None:
            return f"Sorry, we are closed on {day}.", "closed"
        return f"On {day} we are open from {opens} to {closes}.", f"from {opens} to {closes}"
    if intent == "returns":
        return f"You can return any item within {world.return_days} days.", f"{world.return_days} days"
    if intent == "shipping":
        return (
            f"Shipping costs ${world.shipping_fee}, and it is free on orders over ${world.free_shipping_over}.",
            f"${world.shipping_fee}",
        )
    if intent == "order":
        return f"Your order {order.number} {order.status}.", f"{order.number} {order.status}"
    if intent == "unknown":
        return f"Sorry, we do not sell the {invented}.", "do not sell"
    if intent == "refuse":
        return REFUSAL, ""
    raise ValueError(f"unknown intent {intent!r}")


_TURN_PRODUCT = {"price", "stock", "followup_price", "followup_stock"}


def dialogues(world: World, split: str, count: int = 2000, seed: int = 0) -> list[Conversation]:
    """`count` conversations of `split` (`train` or `validation`), 1 to 3 user turns after a system card.

    Each conversation draws its own 2-3 products (names of `split`'s parts, price and stock drawn
    for it) and order for its card; the replies state the card's facts, so only reading the card
    gives the right number. Training dialogues use training phrasings, validation ones held-out
    phrasings and held-out name parts.
    """
    _check_split(split)
    rng = random.Random(f"assistant-dialogues-{world.seed}-{split}-{seed}")
    first_intents = ("price", "stock", "price", "stock", "hours", "returns", "shipping", "order", "unknown", "refuse")
    out = []
    for _ in range(count):
        products = _card_products(rng, split, rng.randint(*CARDS_PER_DIALOGUE))
        subject = products[0]
        rng.shuffle(products)
        order = random_order(rng, products, split)
        day = rng.choice(DAYS)
        invented = next(n for n in iter(lambda: product_name(rng, split), None) if n not in {p.name for p in products})
        intents = ["greeting"] if rng.random() < 0.3 else []
        intents.append(rng.choice(first_intents))
        if intents[-1] in _FOLLOWUP_OF and rng.random() < 0.6:
            intents.append(_FOLLOWUP_OF[intents[-1]])
        elif rng.random() < 0.4:
            intents.append(rng.choice(first_intents))
        messages = [Message("system", system_card(world, products, order))]
        turns = []
        for intent in intents:
            template = rng.choice(user_phrasings(intent, split))
            messages.append(Message("user", template.format(p=subject.name, d=day, x=invented)))
            reply, fact = _reply(world, intent, subject, order, day, invented)
            messages.append(Message("assistant", reply))
            about = subject.name if intent in _TURN_PRODUCT else (invented if intent == "unknown" else "")
            turns.append(Turn(intent, fact, intent.startswith("followup"), tuple(_numbers(reply)), about))
        out.append(Conversation(tuple(messages), tuple(turns)))
    return out


# ---- preference pairs --------------------------------------------------------------------------

_OFF_TOPIC = ("I like to watch the rain on Sundays.", "Bananas are rich in potassium.", "The moon is far away.")
_RUDE = ("Figure it out yourself.", "Stop bothering me.", "That is a stupid question.")


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+", text)


def _wrong_fact(reply: str, rng: random.Random) -> str | None:
    """`reply` with its first number changed (None when it has none)."""
    numbers = _numbers(reply)
    if not numbers:
        return None
    value = int(numbers[0])
    wrong = value + rng.choice((-1, 1)) * rng.randint(1, 9)
    wrong = wrong if wrong > 0 and wrong != value else value + 10
    return re.sub(r"\d+", str(wrong), reply, count=1)


def preference_pairs(world: World, split: str, count: int = 2000, seed: int = 0) -> list[PreferencePair]:
    """Pairs on the prompts of `dialogues(world, split)`: the true reply chosen, a flawed one rejected.

    Each pair takes one assistant turn of a dialogue (its prompt: everything before it) and a flaw:
    `wrong_fact` (a number changed; only for replies with a number), `invented_product` (a product
    not on the dialogue's card, named from `split`'s parts), `off_topic` or `rude`.
    """
    rng = random.Random(f"assistant-prefs-{world.seed}-{split}-{seed}")
    out = []
    for conversation in dialogues(world, split, count=count, seed=seed + 1):
        index = rng.randrange(len(conversation.turns))
        position = 2 + 2 * index  # system, then (user, assistant) pairs
        prompt, chosen = conversation.messages[:position], conversation.messages[position].content
        flaws = ["invented_product", "off_topic", "rude"] + (["wrong_fact"] * 3 if _numbers(chosen) else [])
        flaw = rng.choice(flaws)
        if flaw == "wrong_fact":
            rejected = _wrong_fact(chosen, rng)
        elif flaw == "invented_product":
            card = conversation.messages[0].content
            invented = next(n for n in iter(lambda: product_name(rng, split), None) if n not in card)
            rejected = f"You should buy the {invented}, it costs ${rng.randint(3, 99)}."
        elif flaw == "off_topic":
            rejected = rng.choice(_OFF_TOPIC)
        else:
            rejected = rng.choice(_RUDE)
        out.append(PreferencePair(prompt, chosen, rejected, flaw))
    return out


# ---- specs -------------------------------------------------------------------------------------


def parse_spec(spec: str) -> tuple[str, int]:
    """`("docs" | "sft" | "prefs", seed)` of an `assistant:PART[@SEED]` spec (`docs` may end in `:MB`).

    Example:
    >>> parse_spec("assistant:sft@3"), parse_spec("assistant:docs@1:12")
    (('sft', 3), ('docs', 1))
    """
    body, _, seed = spec.partition("@")
    if body == "assistant:docs" or body.startswith("assistant:docs:"):
        body, seed = "assistant:docs", seed.partition(":")[0]
        docs_bytes(spec)  # a bad size is named here too
    if body not in SPECS or (seed and not seed.isdigit()):
        raise DatasetError(
            f"unknown assistant dataset spec {spec!r}; valid: {', '.join(SPECS)} (optionally @SEED; docs also :MB)"
        )
    return body.split(":", 1)[1], int(seed or 0)


def docs_bytes(spec: str) -> int:
    """The pre-training text's size of an `assistant:docs[@SEED][:MB]` spec: MB megabytes, else `DOCUMENT_BYTES`.

    A corpus larger than the default keeps a longer pre-training from memorizing the documents:
    every document draws new products, so only copying from the card predicts the prose.

    Example:
    >>> docs_bytes("assistant:docs"), docs_bytes("assistant:docs@2:12.8")
    (1600000, 12800000)
    """
    size = spec.rpartition("@")[2].partition(":")[2] if "@" in spec else spec[len("assistant:docs:") :]
    if not size:
        return DOCUMENT_BYTES
    try:
        megabytes = float(size)
    except ValueError:
        megabytes = 0.0
    if not 0.01 <= megabytes <= 1000:
        raise DatasetError(f"{spec}: the documents' size must be a number of megabytes in [0.01, 1000], got {size!r}")
    return round(megabytes * 1_000_000)


def reply_is_correct(reply: str, turn: Turn) -> bool:
    """Whether a generated `reply` does what `turn` asks (answer accuracy; refusal for `refuse` turns).

    A fact turn is correct when the reply contains the fact and states no number the reference
    reply does not (a wrong price next to the right one fails).

    Example:
    >>> reply_is_correct("The Red Mug costs $12.", Turn("price", "$12", numbers=("12",)))
    True
    >>> reply_is_correct("The Red Mug costs $13.", Turn("price", "$12", numbers=("12",)))
    False
    """
    if turn.intent == "refuse":
        return is_refusal(reply)
    if turn.intent == "greeting":
        return not is_refusal(reply) and bool(reply.strip())
    return turn.fact.lower() in reply.lower() and set(_numbers(reply)) <= set(turn.numbers)


def is_refusal(reply: str) -> bool:
    """Whether `reply` declines (the refusal the dialogues teach)."""
    return "can't help" in reply.lower() or "cannot help" in reply.lower()
