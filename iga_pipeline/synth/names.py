"""Made-up but plausible names for the synthetic participants.

Names follow the country of birth loosely (people born in Sweden, or with no
country given, draw from six of the lists, `_ANY_ORIGIN`). None of them is meant to be anyone.
"""

from __future__ import annotations

import random

# origin -> (women's first names, men's first names, family names)
NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "arabic": (
        ("Fatima", "Zainab", "Maryam", "Noor", "Rana", "Huda", "Layla", "Amira",
         "Samira", "Rasha", "Dalia", "Hanan", "Iman", "Sara", "Ruqaya", "Shaima"),
        ("Ahmed", "Mohammed", "Ali", "Hassan", "Hussein", "Omar", "Karim", "Mustafa",
         "Khalid", "Yousef", "Samir", "Haider", "Firas", "Tariq", "Nabil", "Ammar"),
        ("Al-Hassan", "Abdullah", "Jaber", "Kareem", "Hamdan", "Saleh", "Mahmoud",
         "Najjar", "Haddad", "Al-Obaidi", "Al-Jubouri", "Khalil", "Yassin", "Darwish",
         "Al-Saadi", "Aziz"),
    ),
    "somali": (
        ("Hodan", "Amina", "Faadumo", "Sahra", "Ifrah", "Nimco", "Ubah", "Hibaaq",
         "Asha", "Ladan", "Fardowsa", "Khadra"),
        ("Abdi", "Abdirahman", "Mahad", "Liban", "Farah", "Hamza", "Yusuf", "Guled",
         "Abdullahi", "Mohamud", "Bashir", "Said"),
        ("Warsame", "Farah", "Hassan", "Abdi", "Jama", "Osman", "Egal", "Mohamud",
         "Ali", "Nur", "Hersi", "Dahir"),
    ),
    "tigrinya": (
        ("Helen", "Senait", "Selam", "Rahel", "Meron", "Tsega", "Luwam", "Saba",
         "Yordanos", "Mebrat"),
        ("Tesfay", "Yonas", "Samuel", "Berhane", "Dawit", "Kidane", "Mehari",
         "Habtom", "Filmon", "Tekle"),
        ("Tesfamariam", "Ghebremedhin", "Haile", "Woldu", "Tekle", "Kahsay", "Berhe",
         "Mengistu", "Abraha", "Ghirmay"),
    ),
    "bosnian_albanian": (
        ("Amra", "Lejla", "Selma", "Merima", "Azra", "Emina", "Aida", "Arta",
         "Blerta", "Vjosa", "Lirije", "Alma"),
        ("Emir", "Adnan", "Amir", "Edin", "Haris", "Mirza", "Nermin", "Arben",
         "Besnik", "Driton", "Fatmir", "Jasmin"),
        ("Hodžić", "Begić", "Delić", "Kovačević", "Hadžić", "Mujić", "Husić",
         "Berisha", "Krasniqi", "Gashi", "Hoxha", "Shala"),
    ),
    "persian": (
        ("Maryam", "Zahra", "Shirin", "Parisa", "Fereshteh", "Mina", "Nasrin",
         "Roya", "Laleh", "Farzana", "Sima", "Homa"),
        ("Reza", "Ali", "Hamid", "Farid", "Javad", "Mahmoud", "Najib", "Ahmad",
         "Dariush", "Babak", "Habib", "Sohrab"),
        ("Ahmadi", "Hosseini", "Rahimi", "Karimi", "Mohammadi", "Rezaei", "Sultani",
         "Hakimi", "Jafari", "Nazari", "Azizi", "Amiri"),
    ),
    "thai": (
        ("Siriporn", "Kanya", "Malee", "Pranee", "Wanida", "Sunee"),
        ("Somchai", "Anan", "Prasert", "Chaiwat"),
        ("Srisuk", "Chaiyaporn", "Wongsawat", "Boonmee", "Saelim", "Thongdee"),
    ),
    "polish": (
        ("Agnieszka", "Katarzyna", "Joanna", "Ewa", "Magdalena"),
        ("Piotr", "Tomasz", "Krzysztof", "Marek", "Paweł"),
        ("Nowak", "Wójcik", "Mazur", "Krawczyk", "Zając", "Duda"),
    ),
    "swedish": (
        ("Anna", "Maria", "Karin", "Sara", "Emma", "Linda", "Åsa", "Jenny"),
        ("Anders", "Johan", "Mikael", "Per", "Lars", "Daniel", "Fredrik", "Erik"),
        ("Andersson", "Johansson", "Persson", "Nilsson", "Larsson", "Olsson",
         "Lindqvist", "Bengtsson", "Håkansson", "Svensson"),
    ),
}

ORIGIN_BY_COUNTRY = {
    "IQ": "arabic", "SY": "arabic",
    "SO": "somali",
    "ER": "tigrinya",
    "BA": "bosnian_albanian", "XK": "bosnian_albanian",
    "AF": "persian", "IR": "persian",
    "TH": "thai",
    "PL": "polish",
}

# Born in Sweden (immigrant background) or country not given: one of these lists.
_ANY_ORIGIN = ("arabic", "somali", "tigrinya", "bosnian_albanian", "persian", "swedish")


def draw_name(rng: random.Random, country: str, sex: str) -> tuple[str, str]:
    """(first name, family name) for a person of this sex (K/M) and country."""
    origin = ORIGIN_BY_COUNTRY.get(country) or rng.choice(_ANY_ORIGIN)
    women, men, families = NAMES[origin]
    return rng.choice(women if sex == "K" else men), rng.choice(families)
