"""Word lists and hostile spellings the sample generator draws from."""

from __future__ import annotations

# fmt: off
GENRES = (
    "acoustic", "afrobeat", "alt-rock", "alternative", "ambient", "anime", "black-metal",
    "bluegrass", "blues", "brazil", "breakbeat", "british", "cantopop", "chicago-house",
    "children", "chill", "classical", "club", "comedy", "country", "dance", "dancehall",
    "death-metal", "deep-house", "detroit-techno", "disco", "disney", "drum-and-bass", "dub",
    "dubstep", "edm", "electro", "electronic", "emo", "folk", "forro", "french", "funk", "garage",
    "german", "gospel", "goth", "grindcore", "groove", "grunge", "guitar", "happy", "hard-rock",
    "hardcore", "hardstyle", "heavy-metal", "hip-hop", "honky-tonk", "house", "idm", "indian",
    "indie-pop", "indie", "industrial", "iranian", "j-dance", "j-idol", "j-pop", "j-rock", "jazz",
    "k-pop", "kids", "latin", "latino", "malay", "mandopop", "metal", "metalcore",
    "minimal-techno", "mpb", "new-age", "opera", "pagode", "party", "piano", "pop-film", "pop",
    "power-pop", "progressive-house", "psych-rock", "punk-rock", "punk", "r-n-b", "reggae",
    "reggaeton", "rock-n-roll", "rock", "rockabilly", "romance", "sad", "salsa", "samba",
    "sertanejo", "show-tunes", "singer-songwriter", "ska", "sleep", "songwriter", "soul",
    "spanish", "study", "swedish", "synth-pop", "tango", "techno", "trance", "trip-hop", "turkish",
    "world-music",
)
SONG_COLUMNS = (
    "id", "track_id", "artists", "album_name", "track_name", "popularity", "duration_ms",
    "explicit", "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "valence", "tempo", "time_signature", "track_genre",
)
WORDS = (
    "Love", "Night", "Heart", "Fire", "Dream", "City", "Light", "Shadow", "Ocean", "River", "Gold",
    "Blue", "Wild", "Home", "Dance", "Rain", "Summer", "Midnight", "Star", "Moon", "Road", "Echo",
    "Ghost", "Paradise", "Thunder", "Silver", "Broken", "Forever", "Electric", "Velvet", "Neon",
    "Desert", "Winter", "Storm", "Angel", "Fever", "Sugar", "Diamond", "Mirror", "Garden",
    "Corazón", "Noche", "Vida", "Amor", "Nuit", "Sonne", "Café", "Sakura", "Ave", "Maria",
)
FIRST = (
    "Norma", "Jorge", "Elizabeth", "Susan", "Adam", "Diane", "Barbara", "María", "José", "Yuki",
    "Min-jun", "Aisha", "Lars", "Chloé", "Mateo", "Priya", "Omar", "Hana", "Luca", "Zoe", "Kwame",
)
LAST = (
    "Fisher", "Sullivan", "Woods", "Wagner", "Thompson", "Stewart", "García", "Tanaka", "Kim",
    "Khan", "Nilsson", "Dubois", "Rossi", "Patel", "Haddad", "Müller", "Novak", "Okafor", "Chen",
)
COUNTRIES = (
    "Canada", "United Kingdom", "Germany", "France", "Brazil", "Mexico", "India", "Japan",
    "Korea, Republic of", "Australia", "Nigeria", "Spain", "Sweden",
)
# (template, weight): {0}..{3} words, {f}/{l} first/last name, {n} number, {r} roman, {t} title.
TITLES = (("{0}", 24), ("{0} {1}", 30), ("{0} {1} {2}", 15), ("{0} of {1}", 8),
           ("{0} ({1} Remix)", 5), ("{0} - Live", 4), ("{0}, {1}", 5),
           ('{0} {1}, "{2} Gesang {r}"', 3), ('{0}, Op. {n}: "{1}"', 3), ('The "{0}" {1}', 3))
ALBUMS = (("{t}", 30), ("{0} {1}", 30), ("{0} EP", 15), ("{0} (Deluxe Edition)", 10),
           ("{0}, Vol. {n}", 10), ("Greatest Hits", 5))
ARTISTS = (("{f} {l}", 55), ("The {0}s", 10), ("{0} {1}", 10), ("DJ {0}", 5), ("{0}", 10),
            ("{f} {l} & The {0}s", 5), ("{f}, The {0}", 3), ('{f} "{0}" {l}', 2))
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")
# (column, decimals) of Spotify's audio features in [0, 1].
UNIT_FEATURES = (("danceability", 3), ("energy", 3), ("speechiness", 4), ("acousticness", 4),
                  ("instrumentalness", 6), ("liveness", 4), ("valence", 3))
BASE62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Bad spellings per reason; each fails exactly its own rule of the streams contract.
BAD_USER_IDS = ("42.0", "0x2A", "-1", "abc", "99999999999999999999", "9223372036854775808", "+42",
                 "4 2", "1e3", "1_000", "\u0663", "\uff11\uff12", "\u00a042", "NULL", "NaN")
BAD_TIMES = ("2024-6-5 1:2:3", "2024-02-30 10:00:00", "2024-06-25 24:00:00", "not-a-time",
              "2024-06-25 10:00:60", "2023-02-29 12:00:00", "2024-04-31 08:15:00",
              "2024-13-01 00:00:00", "2024-06-25T10:00:00+00:00", "2024-06-25 10:00",
              "2024/06/25 10:00:00", "0000-01-01 00:00:00", "1719309600", "2024-06-25 10:00:00.123",
              "2024-06-25  10:00:00", "25/06/2024 10:00:00", "2024-06-25 10:00:00z",
              "2024-06-25t10:00:00")
FUTURE_DAYS = ("2999-01-01", "2999-12-31", "2100-01-01", "2525-07-04", "9999-12-31")
# fmt: on
