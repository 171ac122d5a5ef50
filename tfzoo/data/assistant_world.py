"""A deterministic customer-service world and the assistant data made from it (issue 20).

`make_world(seed)` builds a small shop: a catalogue (products with prices and
stock), customer orders, opening hours and policies. From it come:

- `documents(world)`: the pre-training corpus, the world in prose (catalogue
  pages, hours, policies, order notes, several phrasings each) plus few-shot
  pattern blocks (`probe_block`) that make the probe task learnable in context;
- `dialogues(world, split)`: multi-turn conversations (system card, greeting,
  questions answered from the catalogue, follow-ups that refer to the earlier
  turn's product, requests the assistant must refuse, products it cannot
  answer about). Every assistant turn records its `intent` and the `fact`
  its reply must state;
- `preference_pairs(world, split)`: the same prompts with a chosen reply
  (correct, grounded, polite) and a rejected one (wrong fact, invented product,
  off-topic, rude);
- `probe_examples(seed, shots)`: the few-shot probe (a word rule shown by
  examples, then a new word).

Held-out split: the `validation` dialogues ask only about held-out products
(`world.held_out`, never named in a training dialogue) with held-out phrasings
(the last `HELD_OUT_PHRASINGS` templates of every user intent), so memorised
strings do not score. Everything depends only on the seed.

Dataset specs (read by `load_assistant`): `assistant:docs` (text splits for the
`lm` task), `assistant:sft` (dialogues), `assistant:prefs` (preference pairs);
an optional `@SEED` picks another world (`assistant:sft@3`).

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

from tfzoo.data.errors import DatasetError

NUM_PRODUCTS = 40
NUM_HELD_OUT = 8  # products named only in validation dialogues (and in the pre-training documents)
NUM_ORDERS = 30
HELD_OUT_PHRASINGS = 2  # the last templates of every user intent are validation-only
CARDS_PER_DIALOGUE = 2  # products listed in a dialogue's system message
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
REFUSAL = "Sorry, I can't help with that."
SPECS = ("assistant:docs", "assistant:sft", "assistant:prefs")

_COLOURS = ("Red", "Blue", "Green", "Black", "White", "Silver", "Golden", "Pink", "Grey", "Orange")
_KINDS = (
    "Kettle",
    "Lamp",
    "Mug",
    "Toaster",
    "Blender",
    "Fan",
    "Clock",
    "Chair",
    "Pillow",
    "Teapot",
    "Radio",
    "Scarf",
    "Backpack",
    "Umbrella",
    "Candle",
    "Notebook",
)
# Products the shop does not sell: the first four in training dialogues, the last two in validation ones.
_INVENTED = ("Purple Piano", "Velvet Sofa", "Copper Drone", "Magic Carpet", "Crystal Phone", "Wooden Bicycle")
_STATUSES = ("has been shipped", "is being packed", "was delivered", "is on its way")


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
    """The shop: `products` (the last `NUM_HELD_OUT` are `held_out`), `orders`, `hours` and policies."""

    seed: int
    store: str
    products: tuple[Product, ...]
    orders: tuple[Order, ...]
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
    """What an assistant reply must do: `intent`, the `fact` it states ("" for none), `refers_back`."""

    intent: str
    fact: str = ""
    refers_back: bool = False  # a follow-up about the product of an earlier turn
    numbers: tuple[str, ...] = ()  # every number the reference reply states (a reply may state no other)


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


def make_world(seed: int = 0) -> World:
    """The shop of `seed`: 40 distinct products, 30 orders, hours and policies (pure function of the seed)."""
    rng = random.Random(f"assistant-world-{seed}")
    names = [f"{c} {k}" for c in _COLOURS for k in _KINDS]
    rng.shuffle(names)
    products = tuple(
        Product(name, rng.randint(3, 99), rng.choice((0, 0) + tuple(range(1, 30)))) for name in names[:NUM_PRODUCTS]
    )
    orders = tuple(
        Order(str(1000 + 37 * i + rng.randint(0, 36)), rng.choice(products).name, rng.choice(_STATUSES))
        for i in range(NUM_ORDERS)
    )
    opens, closes = rng.randint(7, 10), rng.randint(17, 20)
    hours = tuple((day, opens, closes) for day in DAYS[:5]) + (
        ("Saturday", opens + 1, closes - 4),
        ("Sunday", None, None),
    )
    store = rng.choice(("Acme Home", "Corner Shop", "Bright Goods", "Maple Store"))
    return World(seed, store, products, orders, hours, rng.choice((14, 30, 60)), rng.randint(3, 9), 50)


def _hours_text(day: str, opens, closes) -> str:
    return f"we are closed on {day}" if opens is None else f"on {day} we are open from {opens} to {closes}"


def _stock_text(product: Product) -> str:
    if product.stock == 0:
        return f"the {product.name} is out of stock"
    return f"we have {product.stock} of the {product.name} in stock"


# ---- the pre-training documents ------------------------------------------------------------------

_PRODUCT_PAGES = (
    "The {name} costs ${price}. {Stock}.",
    "Product page: {name}. Price: ${price}. Stock: {stock} units.",
    "Looking for a {name}? It sells for ${price}, and {stock_text}.",
    "{name} - ${price}. {Stock}.",
    "Our {name} is priced at ${price}; {stock_text}.",
)
_PROBE_RULES = {
    "upper": str.upper,
    "reverse": lambda w: w[::-1],
    "double": lambda w: w + w,
    "first": lambda w: w[:2],
}
_PROBE_WORDS = (
    "cat dog sun map pen cup box hat key leg arm bed car egg fox gem ink jar kit log mud net owl pig rat sky "
    "tea van web yak zip bag cow den elf fig gum hen ivy jam kid lid mix nut oak pan rug sea tin urn vet wax"
).split()


def documents(world: World, *, copies: int = 20) -> tuple[str, str]:
    """`(train, validation)` prose of the world: every fact in several phrasings, and probe blocks.

    The validation text is one more pass with other random choices (the same facts, new sentences).
    """

    def one_pass(rng: random.Random) -> list[str]:
        paragraphs = []
        for product in world.products:
            template = rng.choice(_PRODUCT_PAGES)
            stock = _stock_text(product)
            paragraphs.append(
                template.format(
                    name=product.name,
                    price=product.price,
                    stock=product.stock,
                    stock_text=stock,
                    Stock=stock[0].upper() + stock[1:],
                )
            )
        paragraphs.append(
            f"{world.store} opening hours: " + "; ".join(_hours_text(d, o, c) for d, o, c in world.hours) + "."
        )
        paragraphs.append(
            f"Returns: you can return any item within {world.return_days} days. Shipping costs "
            f"${world.shipping_fee}, and it is free on orders over ${world.free_shipping_over}."
        )
        for order in rng.sample(world.orders, 8):
            paragraphs.append(f"Order {order.number} for the {order.product} {order.status}.")
        for _ in range(20):
            paragraphs.append(probe_block(rng, rng.randint(1, 9)))
        rng.shuffle(paragraphs)
        return paragraphs

    rng = random.Random(f"assistant-docs-{world.seed}")
    train = [p for _ in range(copies) for p in one_pass(rng)]
    validation = one_pass(random.Random(f"assistant-docs-val-{world.seed}"))
    return "\n\n".join(train) + "\n\n", "\n\n".join(validation) + "\n\n"


def probe_block(rng: random.Random, shots: int, rule: str | None = None) -> str:
    """`shots + 1` lines `word -> rule(word)` of one random rule (the probe's format)."""
    rule = rule or rng.choice(sorted(_PROBE_RULES))
    words = rng.sample(_PROBE_WORDS, shots + 1)
    return "\n".join(f"{w} -> {_PROBE_RULES[rule](w)}" for w in words)


def probe_examples(seed: int, shots: int, count: int = 100) -> list[tuple[str, str]]:
    """`count` probe prompts with `shots` examples of a rule, each `(prompt, expected answer)`.

    The prompt ends with `"word -> "`; the answer is the rule applied to the word. With 0 shots the
    rule cannot be known (chance is one in `len(_PROBE_RULES)`).

    Example:
    >>> prompt, answer = probe_examples(0, 2, count=1)[0]
    >>> prompt.count("\\n"), prompt.endswith(" -> ")
    (2, True)
    """
    rng = random.Random(f"assistant-probe-{seed}-{shots}")
    out = []
    for _ in range(count):
        rule = rng.choice(sorted(_PROBE_RULES))
        lines = probe_block(rng, shots, rule).split("\n")
        query = lines[-1].split(" -> ")[0]
        out.append(("\n\n" + "\n".join(lines[:-1] + [f"{query} -> "]).lstrip("\n"), _PROBE_RULES[rule](query)))
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


def _system_message(world: World, products: list[Product], order: Order) -> str:
    cards = "; ".join(f"{p.name} ${p.price}, {p.stock} in stock" for p in products)
    return f"{world.store}. Items: {cards}. Order {order.number}: {order.product}, {order.status}."


def _reply(world: World, intent: str, product: Product | None, order: Order, day: str, invented: str) -> tuple:
    """`(reply, fact)` of an intent."""
    if intent == "greeting":
        return random.Random(intent + (product.name if product else "")).choice(GREETINGS), ""
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


def dialogues(world: World, split: str, count: int = 2000, seed: int = 0, reprice: float = 0.0) -> list[Conversation]:
    """`count` conversations of `split` (`train` or `validation`), 1 to 3 user turns after a system card.

    Training dialogues ask about `world.seen` products with training phrasings; validation ones
    about `world.held_out` products with held-out phrasings. `reprice` (training dialogues only):
    the share of dialogues whose card gives its products another price and stock (drawn per
    dialogue; the replies follow the card), so that only reading the card gives the right number.
    """
    if split not in ("train", "validation"):
        raise DatasetError(f"split must be 'train' or 'validation', got {split!r}")
    rng = random.Random(f"assistant-dialogues-{world.seed}-{split}-{seed}")
    reprice_rng = random.Random(f"assistant-reprice-{world.seed}-{seed}")  # apart: reprice=0 keeps the data
    pool = list(world.seen if split == "train" else world.held_out)
    first_intents = ("price", "stock", "price", "stock", "hours", "returns", "shipping", "order", "unknown", "refuse")
    out = []
    for _ in range(count):
        products = rng.sample(pool, CARDS_PER_DIALOGUE)
        if split == "train" and reprice > 0 and reprice_rng.random() < reprice:
            products = [Product(p.name, reprice_rng.randint(3, 99), reprice_rng.randint(0, 29)) for p in products]
        subject = products[0]
        rng.shuffle(products)
        order = rng.choice([o for o in world.orders if o.product in {p.name for p in pool}] or list(world.orders))
        day = rng.choice(DAYS)
        invented = rng.choice(_INVENTED[:4] if split == "train" else _INVENTED[4:])
        intents = ["greeting"] if rng.random() < 0.3 else []
        intents.append(rng.choice(first_intents))
        if intents[-1] in _FOLLOWUP_OF and rng.random() < 0.6:
            intents.append(_FOLLOWUP_OF[intents[-1]])
        elif rng.random() < 0.4:
            intents.append(rng.choice(first_intents))
        messages = [Message("system", _system_message(world, products, order))]
        turns = []
        for intent in intents:
            template = rng.choice(user_phrasings(intent, split))
            messages.append(Message("user", template.format(p=subject.name, d=day, x=invented)))
            reply, fact = _reply(world, intent, subject, order, day, invented)
            messages.append(Message("assistant", reply))
            turns.append(Turn(intent, fact, intent.startswith("followup"), tuple(_numbers(reply))))
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


def preference_pairs(
    world: World, split: str, count: int = 2000, seed: int = 0, reprice: float = 0.0
) -> list[PreferencePair]:
    """Pairs on the prompts of `dialogues(world, split)`: the true reply chosen, a flawed one rejected.

    Each pair takes one assistant turn of a dialogue (its prompt: everything before it) and a flaw:
    `wrong_fact` (a number changed; only for replies with a number), `invented_product` (a product
    the shop does not sell), `off_topic` or `rude`. `reprice`: as for `dialogues`.
    """
    rng = random.Random(f"assistant-prefs-{world.seed}-{split}-{seed}")
    names = {p.name for p in world.products}
    out = []
    for conversation in dialogues(world, split, count=count, seed=seed + 1, reprice=reprice):
        index = rng.randrange(len(conversation.turns))
        position = 2 + 2 * index  # system, then (user, assistant) pairs
        prompt, chosen = conversation.messages[:position], conversation.messages[position].content
        flaws = ["invented_product", "off_topic", "rude"] + (["wrong_fact"] * 3 if _numbers(chosen) else [])
        flaw = rng.choice(flaws)
        if flaw == "wrong_fact":
            rejected = _wrong_fact(chosen, rng)
        elif flaw == "invented_product":
            invented = next(x for x in rng.sample(_INVENTED, len(_INVENTED)) if x not in names)
            rejected = f"You should buy the {invented}, it costs ${rng.randint(3, 99)}."
        elif flaw == "off_topic":
            rejected = rng.choice(_OFF_TOPIC)
        else:
            rejected = rng.choice(_RUDE)
        out.append(PreferencePair(prompt, chosen, rejected, flaw))
    return out


# ---- specs -------------------------------------------------------------------------------------


def parse_spec(spec: str) -> tuple[str, int]:
    """`("docs" | "sft" | "prefs", seed)` of an `assistant:PART[@SEED]` spec.

    Example:
    >>> parse_spec("assistant:sft@3")
    ('sft', 3)
    """
    body, _, seed = spec.partition("@")
    if body not in SPECS or (seed and not seed.isdigit()):
        raise DatasetError(f"unknown assistant dataset spec {spec!r}; valid: {', '.join(SPECS)} (optionally @SEED)")
    return body.split(":", 1)[1], int(seed or 0)


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
