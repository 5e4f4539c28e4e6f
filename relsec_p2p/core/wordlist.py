"""The join-code word list: short, concrete, easy-to-say English words.

Rules of this file: written for relsec; lowercase, 3 to 8 letters, no two words
one letter apart (so a single typo never yields a different valid word), no
homophones or heteronyms (so a word heard aloud has one spelling), no spelling
variants, nothing offensive or alarming. Changing it changes every code: the
list is part of the protocol (SPEC), so only add words in a new version.
"""

from __future__ import annotations

# fmt: off
WORDS: tuple[str, ...] = (
    "acorn", "almond", "amber", "anchor", "antler", "apple", "apricot", "apron", "arrow",
    "aspen", "atlas", "autumn", "avocado", "bagel", "bamboo", "barley", "basil", "basket",
    "beacon", "beetle", "bench", "bicycle", "birch", "biscuit", "bison", "blanket", "blossom",
    "bottle", "breeze", "brick", "bridge", "bronze", "broom", "bubble", "bucket", "buffalo",
    "bundle", "butter", "button", "cabbage", "cabin", "cactus", "camel", "candle", "canoe",
    "canyon", "caramel", "carpet", "cashew", "castle", "chalk", "cheese", "cheetah", "chess",
    "chestnut", "chimney", "cinnamon", "circle", "citrus", "clover", "cobalt", "cocoa", "comet",
    "compass", "cookie", "coral", "cotton", "crab", "cradle", "crane", "crater", "crayon",
    "cricket", "crimson", "crystal", "cupcake", "cushion", "daisy", "delta", "denim", "desk",
    "diamond", "dolphin", "domino", "donkey", "dragon", "drum", "duck", "dune", "eagle",
    "easel", "echo", "elbow", "elephant", "emerald", "engine", "fabric", "falcon", "feather",
    "fern", "fiddle", "fig", "finch", "firefly", "flamingo", "flute", "forest", "fossil",
    "fountain", "fox", "frog", "galaxy", "garden", "garlic", "garnet", "gecko", "ginger",
    "giraffe", "glacier", "globe", "goat", "golden", "goose", "granite", "grape", "gravel",
    "guitar", "hammock", "hamster", "harbor", "harvest", "hawk", "hazel", "hedge", "helmet",
    "heron", "hill", "honey", "hornet", "igloo", "indigo", "iris", "ivory", "ivy", "jacket",
    "jaguar", "jasmine", "jelly", "jigsaw", "juniper", "kayak", "kettle", "kitten", "kiwi",
    "koala", "ladder", "lagoon", "lantern", "lark", "laurel", "lavender", "lemon", "lemur",
    "lentil", "lilac", "lily", "linen", "lion", "lizard", "lobster", "lotus", "magnet",
    "magnolia", "mammoth", "mango", "mantis", "maple", "marble", "meadow", "melon", "mermaid",
    "meteor", "mint", "mirror", "mosaic", "moss", "moth", "muffin", "museum", "napkin",
    "nectar", "needle", "nest", "noodle", "nutmeg", "oak", "oasis", "oatmeal", "ocean",
    "octopus", "olive", "onion", "orange", "orbit", "orca", "orchid", "otter", "owl", "oyster",
    "palace", "panda", "papaya", "paprika", "parrot", "parsley", "pasta", "peach", "peacock",
    "peanut", "pebble", "pelican", "pencil", "penguin", "pepper", "piano", "pickle", "pilot",
    "pine", "pizza", "planet", "pony", "poppy", "potato", "pretzel", "pudding", "pumpkin",
    "puzzle", "quail", "quartz", "quilt", "rabbit", "raccoon", "radio", "radish", "raft",
    "rainbow", "raven", "rhubarb", "ribbon", "rice", "river", "robin", "rocket", "rooster",
    "saddle", "saffron", "sage", "salsa", "sandal", "sapphire", "satchel", "scarf", "scarlet",
    "scooter", "seal", "shell", "shovel", "silver", "sketch", "skillet", "snail", "sparrow",
    "spider", "spinach", "sponge", "spoon", "sprout", "squid", "stamp", "starfish", "statue",
    "stone", "straw", "sugar", "summit", "sunset", "swan", "table", "taco", "tadpole",
    "tapestry", "teapot", "thimble", "thunder", "tiger", "toffee", "tofu", "tomato", "topaz",
    "tractor", "trolley", "trout", "truffle", "trumpet", "tugboat", "tulip", "tuna", "tundra",
    "turnip", "turtle", "tuxedo", "umbrella", "unicorn", "valley", "vanilla", "velvet",
    "violin", "volcano", "waffle", "wagon", "walnut", "walrus", "wasabi", "wheat", "whistle",
    "willow", "windmill", "window", "winter", "wolf", "yarn", "zebra", "zipper",
)
# fmt: on

# Spellings people reach for that mean a listed word; accepted when parsing.
ALIASES: dict[str, str] = {"harbour": "harbor"}
