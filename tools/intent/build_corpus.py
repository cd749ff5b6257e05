#!/usr/bin/python3
"""Builds tests/corpus/replies.json from the hand-written bodies in
tests/corpus/bodies/*.txt: each body goes into a reply envelope as a mail
client writes it (Gmail, Outlook, Apple Mail, bottom-posting, no quote;
signatures and mobile footers; HTML-only for bodies marked +h), in the
body's language, with the outreach it answers quoted below (that outreach
says "interested" and "unsubscribe": a classifier reading the quote fails).

The split is fixed here, before any classifier sees the data: within each
(language, intent), the bodies whose SHA-256 ranks in the first 35% are
"heldout", the rest "train". The 49 replies of the earlier corpus
(replies_v1.json) are all "train": the phrase rules were tuned on them.
Deterministic: the same bodies give the same file."""
import hashlib
import json
import os
import random
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BODIES = os.path.join(ROOT, "tests", "corpus", "bodies")
OUT = os.path.join(ROOT, "tests", "corpus", "replies.json")
V1 = os.path.join(ROOT, "tests", "corpus", "replies_v1.json")
LABELS = {"i": "interested", "n": "not_interested", "u": "unsubscribe", "x": "neutral"}
LANGS = ["en", "de", "fr", "es", "it", "nl"]
HELDOUT = 0.35

# Per language: the outreach quoted below the reply, attribution lines
# (Gmail, Apple Mail), Outlook header names, the "original message"
# separator, mobile footers, sign-offs and first names.
L = {
    "en": dict(
        outreach="Hi {to},\n\nI'm hiring senior backend engineers for the platform team at Example.\n"
                 "Would you be interested in a quick chat? If not, just reply and I won't write again.\n\n"
                 "Best,\nAna\nUnsubscribe: https://go.example.com/u/AbCdEf",
        gmail="On Tue, Mar 5, 2024 at 9:12 AM Ana Ruiz <ana@example.com> wrote:",
        gmail_wrap="On Tue, Mar 5, 2024 at 9:12 AM Ana Ruiz <\nana@example.com> wrote:",
        apple="On 5 Mar 2024, at 09:12, Ana Ruiz <ana@example.com> wrote:",
        hdr=("From", "Sent", "To", "Subject", "Tuesday, March 5, 2024 9:12 AM", "Backend role at Example"),
        orig="-----Original Message-----",
        mobile=["Sent from my iPhone", "Sent from my Galaxy", "Get Outlook for iOS"],
        bye=["Best,", "Thanks,", "Cheers,", "Regards,", "Best regards,"],
        names=["Sam", "Priya", "Tom Walsh", "Kim", "Olu"],
        title="Senior Software Engineer",
        disclaimer="This e-mail and any attachments are confidential and intended solely for the addressee."),
    "de": dict(
        outreach="Hallo {to},\n\nich suche erfahrene Backend-Entwickler für das Plattform-Team bei Example.\n"
                 "Hätten Sie Interesse an einem kurzen Gespräch? Falls nicht, antworten Sie einfach.\n\n"
                 "Viele Grüße\nAna\nAbmelden: https://go.example.com/u/AbCdEf",
        gmail="Am Di., 5. März 2024 um 09:12 Uhr schrieb Ana Ruiz <ana@example.com>:",
        gmail_wrap="Am Di., 5. März 2024 um 09:12 Uhr schrieb Ana Ruiz <\nana@example.com>:",
        apple="Am 05.03.2024 um 09:12 schrieb Ana Ruiz <ana@example.com>:",
        hdr=("Von", "Gesendet", "An", "Betreff", "Dienstag, 5. März 2024 09:12", "Backend-Stelle bei Example"),
        orig="-----Ursprüngliche Nachricht-----",
        mobile=["Von meinem iPhone gesendet", "Outlook für iOS beziehen"],
        bye=["Viele Grüße", "Beste Grüße", "Gruß", "MfG", "Liebe Grüße"],
        names=["Jonas", "Lena Hoffmann", "Markus", "Katrin"],
        title="Softwareentwicklerin",
        disclaimer="Diese E-Mail enthält vertrauliche Informationen und ist nur für den Empfänger bestimmt."),
    "fr": dict(
        outreach="Bonjour {to},\n\nje recrute des développeurs backend pour l'équipe plateforme d'Example.\n"
                 "Seriez-vous intéressé par un court échange ? Sinon, répondez simplement.\n\n"
                 "Bien à vous,\nAna\nSe désinscrire : https://go.example.com/u/AbCdEf",
        gmail="Le mar. 5 mars 2024 à 09:12, Ana Ruiz <ana@example.com> a écrit :",
        gmail_wrap="Le mar. 5 mars 2024 à 09:12, Ana Ruiz <ana@example.com> a\nécrit :",
        apple="Le 5 mars 2024 à 09:12, Ana Ruiz <ana@example.com> a écrit :",
        hdr=("De", "Envoyé", "À", "Objet", "mardi 5 mars 2024 09:12", "Poste backend chez Example"),
        orig="-----Message d'origine-----",
        mobile=["Envoyé de mon iPhone", "Obtenir Outlook pour iOS"],
        bye=["Cordialement,", "Bien à vous,", "Bonne journée,", "Merci,"],
        names=["Claire", "Luc Bernard", "Sophie", "Thomas"],
        title="Ingénieure logiciel",
        disclaimer="Ce message et ses pièces jointes sont confidentiels et destinés exclusivement à leur destinataire."),
    "es": dict(
        outreach="Hola {to},\n\nestoy buscando ingenieros backend para el equipo de plataforma de Example.\n"
                 "¿Te interesa una breve llamada? Si no, respóndeme y no te escribo más.\n\n"
                 "Saludos,\nAna\nDarse de baja: https://go.example.com/u/AbCdEf",
        gmail="El mar, 5 mar 2024 a las 9:12, Ana Ruiz (<ana@example.com>) escribió:",
        gmail_wrap="El mar, 5 mar 2024 a las 9:12, Ana Ruiz (<ana@example.com>)\nescribió:",
        apple="El 5 mar 2024, a las 9:12, Ana Ruiz <ana@example.com> escribió:",
        hdr=("De", "Enviado", "Para", "Asunto", "martes, 5 de marzo de 2024 9:12", "Puesto backend en Example"),
        orig="-----Mensaje original-----",
        mobile=["Enviado desde mi iPhone", "Obtener Outlook para iOS"],
        bye=["Saludos,", "Un saludo,", "Gracias,", "Un abrazo,"],
        names=["Javier", "Lucía Gómez", "Marta", "Pablo"],
        title="Ingeniera de software",
        disclaimer="Este mensaje es confidencial y está dirigido exclusivamente a su destinatario."),
    "it": dict(
        outreach="Ciao {to},\n\nsto cercando ingegneri backend per il team piattaforma di Example.\n"
                 "Ti interesserebbe una breve chiamata? Se no, rispondi pure e non ti scrivo più.\n\n"
                 "Un saluto,\nAna\nDisiscriviti: https://go.example.com/u/AbCdEf",
        gmail="Il giorno mar 5 mar 2024 alle ore 09:12 Ana Ruiz <ana@example.com> ha scritto:",
        gmail_wrap="Il giorno mar 5 mar 2024 alle ore 09:12 Ana Ruiz <ana@example.com>\nha scritto:",
        apple="Il giorno 5 mar 2024, alle ore 09:12, Ana Ruiz <ana@example.com> ha scritto:",
        hdr=("Da", "Inviato", "A", "Oggetto", "martedì 5 marzo 2024 09:12", "Posizione backend in Example"),
        orig="-----Messaggio originale-----",
        mobile=["Inviato da iPhone", "Scarica Outlook per iOS"],
        bye=["Saluti,", "Un saluto,", "Cordiali saluti,", "Grazie,"],
        names=["Giulia", "Marco Rossi", "Luca", "Chiara"],
        title="Ingegnere del software",
        disclaimer="Questo messaggio è riservato ed è destinato esclusivamente al destinatario indicato."),
    "nl": dict(
        outreach="Hoi {to},\n\nik zoek backend engineers voor het platformteam van Example.\n"
                 "Heb je interesse in een kort gesprek? Zo niet, laat het gerust weten.\n\n"
                 "Groet,\nAna\nAfmelden: https://go.example.com/u/AbCdEf",
        gmail="Op di 5 mrt 2024 om 09:12 schreef Ana Ruiz <ana@example.com>:",
        gmail_wrap="Op di 5 mrt 2024 om 09:12 schreef Ana Ruiz <\nana@example.com>:",
        apple="Op 5 mrt. 2024 om 09:12 heeft Ana Ruiz <ana@example.com> het volgende geschreven:",
        hdr=("Van", "Verzonden", "Aan", "Onderwerp", "dinsdag 5 maart 2024 09:12", "Backend vacature bij Example"),
        orig="-----Oorspronkelijk bericht-----",
        mobile=["Verstuurd vanaf mijn iPhone", "Outlook voor iOS downloaden"],
        bye=["Groet,", "Met vriendelijke groet,", "Groetjes,", "Bedankt,"],
        names=["Sanne", "Daan de Vries", "Bram", "Eva"],
        title="Software engineer",
        disclaimer="Dit bericht is vertrouwelijk en uitsluitend bestemd voor de geadresseerde."),
}


def quoted(text):
    return "\n".join("> " + l if l else ">" for l in text.split("\n")) + "\n"


def signature(rng, c, name):
    kind = rng.choice(["none", "name", "bye", "bye", "dash", "corp", "mobile"])
    if kind == "none":
        return ""
    if kind == "name":
        return "\n" + name.split()[0] + "\n"
    if kind == "bye":
        return "\n" + rng.choice(c["bye"]) + "\n" + name + "\n"
    if kind == "dash":
        return "\n-- \n" + name + "\n" + c["title"] + " | Corp GmbH\n+49 30 1234567\n"
    if kind == "corp":  # no separator: a corporate block straight after the text
        return ("\n" + rng.choice(c["bye"]) + "\n" + name + "\n" + c["title"] + "\nCorp Ltd | corp.example\n"
                + c["disclaimer"] + "\n")
    return "\n\n" + rng.choice(c["mobile"]) + "\n"


def plain(rng, lang, body):
    c = L[lang]
    name = rng.choice(c["names"])
    out = c["outreach"].format(to=name.split()[0])
    style = rng.choice(["gmail", "gmail", "gmail_wrap", "outlook", "outlook_orig", "apple",
                        "bottom", "none"])
    sig = signature(rng, c, name)
    if style in ("gmail", "gmail_wrap"):
        return style, body + "\n" + sig + "\n" + c[style] + "\n" + quoted(out)
    if style == "apple":
        return style, body + "\n" + sig + "\n" + c["apple"] + "\n\n" + quoted(out)
    if style == "outlook":
        f, s, t, su, date, subj = c["hdr"]
        return style, (body + "\n" + sig + "\n________________________________\n"
                       f"{f}: Ana Ruiz <ana@example.com>\n{s}: {date}\n{t}: {name} <{name.split()[0].lower()}@corp.example>\n"
                       f"{su}: {subj}\n\n" + out + "\n")
    if style == "outlook_orig":
        f, s, t, su, date, subj = c["hdr"]
        return style, (body + "\n" + sig + "\n" + c["orig"] + "\n"
                       f"{f}: Ana Ruiz [mailto:ana@example.com]\n{s}: {date}\n{t}: {name}\n{su}: {subj}\n\n"
                       + out + "\n")
    if style == "bottom":
        return style, c["gmail"] + "\n" + quoted(out) + "\n" + body + "\n" + sig
    return style, body + "\n" + sig


def esc(s):
    return s.replace("\n", "<br>\n")


def html(rng, lang, body):
    c = L[lang]
    name = rng.choice(c["names"])
    out = c["outreach"].format(to=name.split()[0]).replace("&", "&amp;").replace("<", "&lt;")
    style = rng.choice(["gmail_html", "outlook_html", "apple_html"])
    if style == "gmail_html":
        return style, ('<div dir="ltr">' + esc(body) + '</div><br><div class="gmail_quote">'
                       '<div dir="ltr" class="gmail_attr">' + c["gmail"].replace("<", "&lt;").replace(">", "&gt;")
                       + '<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
                       'border-left:1px solid rgb(204,204,204);padding-left:1ex">' + esc(out)
                       + "</blockquote></div>\n")
    if style == "outlook_html":
        f, s, t, su, date, subj = c["hdr"]
        return style, ('<html><head><style type="text/css">p {margin:0}</style></head><body dir="ltr">'
                       '<div style="font-family:Calibri,Arial;font-size:12pt">' + esc(body) + "</div>"
                       '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
                       '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri" style="font-size:11pt">'
                       f"<b>{f}:</b> Ana Ruiz &lt;ana@example.com&gt;<br><b>{s}:</b> {date}<br>"
                       f"<b>{t}:</b> {name}<br><b>{su}:</b> {subj}</font><div>&nbsp;</div></div>"
                       "<div>" + esc(out) + "</div></body></html>\n")
    return style, ('<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
                   '<body dir="auto"><div dir="ltr">' + esc(body) + '</div><div dir="ltr"><br><blockquote type="cite">'
                   + c["apple"].replace("<", "&lt;").replace(">", "&gt;") + "<br><br>" + esc(out)
                   + "</blockquote></div></body></html>\n")


def main():
    out = []
    for lang in LANGS:
        rows = []
        with open(os.path.join(BODIES, lang + ".txt"), encoding="utf-8") as f:
            for ln, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                tag, _, body = line.partition("|")
                is_html = tag.endswith("+h")
                label = LABELS.get(tag[0])
                if not label or not body:
                    sys.exit(f"{lang}.txt:{ln}: bad line")
                rows.append((label, is_html, body.replace("\\n", "\n")))
        split = {}
        for label in LABELS.values():
            group = sorted((hashlib.sha256(b.encode()).hexdigest(), b) for l, _, b in rows if l == label)
            k = round(len(group) * HELDOUT)
            for i, (_, b) in enumerate(group):
                split[b] = "heldout" if i < k else "train"
        for n, (label, is_html, body) in enumerate(rows, 1):
            rid = f"{lang}-{n:03d}"
            rng = random.Random(hashlib.sha256(rid.encode()).digest())
            style, text = (html if is_html else plain)(rng, lang, body)
            out.append({"id": rid, "lang": lang, "intent": label, "split": split[body],
                        "style": style, "format": "html" if is_html else "text", "text": text})
    with open(V1, encoding="utf-8") as f:
        for r in json.load(f):
            out.append({"id": "v1-" + r["id"], "lang": r["lang"], "intent": r["intent"], "split": "train",
                        "style": "v1", "format": "text", "text": r["text"]})
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{OUT}: {len(out)} replies, {sum(r['split'] == 'heldout' for r in out)} held out")


if __name__ == "__main__":
    main()
