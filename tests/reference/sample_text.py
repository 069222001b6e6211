"""Training text for the generated tokenizers: plain English with
contractions, numbers, code-like punctuation, runs of spaces and newlines,
then a few other scripts, so that real words become multi-byte tokens and the
pre-tokenizer classes (letters, numbers, other, spaces) all get exercised.
Written for this project; no outside source."""

SAMPLE_TEXT = """Once upon a time, there was a little fox who lived at the edge of a quiet forest.
Every morning the fox walked down to the river to drink, and every morning the river said hello.
"Hello, river," said the fox. "It's a fine day, isn't it?" The river didn't answer in words,
but the water sparkled in the sun, and the fox was happy.

One day the fox met a small bird with bright blue wings. The bird was sad because it couldn't fly.
"What's wrong?" asked the fox. "I've hurt my wing," said the bird, "and I'll never get home."
The fox thought for a long time. Then the fox said, "We'll walk together. I'm not fast, but I'm strong."
So they walked through the forest, over the hill, and across the old wooden bridge.
They walked for three days and three nights. On the fourth day they saw the bird's home: a tall tree
with a round nest at the top. The bird's mother flew down and hugged the little bird.
"Thank you, fox," she said. "You're a true friend." And the fox smiled all the way home.

The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!
She sells sea shells by the sea shore; the shells she sells are surely sea shells.
How much wood would a woodchuck chuck if a woodchuck could chuck wood?

In 2024 the library had 1,234,567 books, 89 computers and 3.14159 cats (roughly).
Call 555-0100 before 10:30 am on 12/31, or write to help@example.org for the 2nd edition.
Prices: $5.99, $12.50, 100% off, 7 x 8 = 56, 2^10 = 1024, version 1.2.3-beta.

def forward(x, weights):
    for layer in weights.layers:
        x = x + layer.attention(rms_norm(x))  # residual
        x = x + layer.mlp(rms_norm(x))
    return x @ weights.output.T

if (a[i] != b[j] && count <= 42) { return -1; } else { total += value * 2; }
{"name": "trillium", "version": "0.1.0", "tokens": [1, 2, 3], "ok": true}

The model reads the text, turns it into tokens, and predicts the next token.
A token can be a whole word, a part of a word, a single letter, or a single byte.
Tokenizers split the text first, then merge the most frequent pairs of symbols again and again.
    Indented lines,   double  spaces,\ttabs and
trailing spaces \x20\x20
are all part of the text too.

Le petit renard marchait dans la forêt. « Où vas-tu ? » demanda l'oiseau. Il était très content.
Der kleine Fuchs läuft über die Brücke. Schöne Grüße aus München! Die Straße ist groß.
El pequeño zorro caminó por el bosque. ¿Dónde está la niña? ¡Qué día tan bonito! Mañana.
Ο μικρός αλεπού περπατά στο δάσος. Καλημέρα κόσμε!
Маленькая лиса гуляла по лесу. Привет, мир! Спасибо.
小さな狐は森を歩きました。こんにちは、世界！ 我们喜欢学习。 안녕하세요 세계
Emoji: 🙂 🦊 🌲 ❤️ 👍🏽 — and symbols: © ® ™ € £ ¥ ° ± × ÷ … “quotes” ‘single’ naïve café résumé coöperate.
"""

# Prompts the golden tests use; gen_model checks that the greedy continuation
# of each has a clear winner at every step (see gen_model.check_gaps).
GOLDEN_PROMPTS = [
    "Once upon a time",
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! It's 2024 and we'll see.",
    "Schöne Grüße, naïve café 日本語 🙂",
]
