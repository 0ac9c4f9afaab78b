# A small text for the command-line tests: 24 chapters of 40 random 12-word lines, with the
# chapter headings bitgrad prepare splits on (chapters 10 and 20 are held out by default).
import random

random.seed(1)
words = "the whale sea ship captain harpoon white deep water boat crew sail wind storm ocean".split()
for ch in range(1, 25):
    print(f"CHAPTER {ch}. The Chapter")
    for _ in range(40):
        print(" ".join(random.choice(words) for _ in range(12)) + ".")
