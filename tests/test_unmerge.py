"""Unmerge: a wrong merge split by a person; the decision kept; facts and events re-keyed."""

from __future__ import annotations

from datetime import date

from crm_assets.cli.main import main

D = date.fromisoformat
CUSTOMERS_HEADER = ("customer_id,first_name,last_name,email,phone,gender,birth_date,city,"
                    "home_store_id,registered_at,email_opt_in,sms_opt_in,push_opt_in,updated_at\n")


def test_unmerge_makes_a_new_person_keeps_them_apart_and_re_keys_their_facts(built, tmp_path,
                                                                             monkeypatch, capsys):
    project = built.copy(tmp_path)
    person = project.scalar("SELECT customer_id FROM core.customer_identity "
                            "WHERE source_customer_id = 'C2'")
    assert project.scalar("SELECT customer_id FROM core.customer_identity "
                          "WHERE source_customer_id = 'C1'") == person  # one person today
    highest = project.scalar("SELECT max(customer_id) FROM core.customer_identity")
    merges = project.query("SELECT * FROM meta.customer_merges ORDER BY ALL")
    project.use_from_cli(monkeypatch)

    assert main(["unmerge", "--customer", str(person), "--records", "C9", "-q"]) == 1
    assert "not records of person" in capsys.readouterr().err
    assert main(["unmerge", "--customer", str(person), "--records", "C1,C2", "-q"]) == 1
    assert "nothing would be left" in capsys.readouterr().err
    assert main(["unmerge", "--customer", str(person), "--records", "C2", "--reason",
                 "two Ivans", "--day", "2025-03-12", "-q"]) == 0
    new = highest + 1  # a new id, above every id ever given
    assert f"person {person}: 1 record(s) split off as person {new}" in capsys.readouterr().out
    assert project.query("SELECT source_customer_id, customer_id, match_rule "
                         "FROM core.customer_identity WHERE source_customer_id IN ('C1', 'C2') "
                         "ORDER BY 1") == [("C1", person, "email+name"),
                                           ("C2", new, "unmerged")]
    # the night that followed re-keyed his facts, events and golden records
    assert project.query("SELECT order_id, customer_id FROM core.orders "
                         "WHERE order_id IN ('O1', 'O2') ORDER BY 1") == [("O1", person),
                                                                        ("O2", new)]
    assert project.query("SELECT order_id, customer_id FROM events.croissant_purchase "
                         "WHERE order_id IN ('O1', 'O2') ORDER BY 1") == [("O1", person),
                                                                        ("O2", new)]
    assert project.query("SELECT customer_id, source_record_count FROM core.customers "
                         "WHERE customer_id IN (?, ?) ORDER BY 1", [person, new]) == [
        (person, 1), (new, 1)]
    assert project.query("SELECT customer_id, new_customer_id, records, reason "
                         "FROM meta.customer_unmerges") == [(person, new, 1, "two Ivans")]
    assert project.query("SELECT * FROM meta.customer_merges ORDER BY ALL") == merges

    # new versions of both records, and a third record linking both, do not join them again
    (project.input_dir / "customers_2025-03-13.csv").write_text(
        CUSTOMERS_HEADER
        + "C2,Петров,Иван,IVAN@yandex.ru,8 (916) 123-45-67,m,15.03.1990,мск,S1,"
          "2025-02-01 09:00:00,true,,,2025-03-13 09:00:00\n"
        + "C6,Иван,Петров,ivan@yandex.ru,+7 916 123-45-67,М,1990-03-15,Москва,S1,"
          "2025-03-13 10:00:00,true,true,false,2025-03-13 10:00:00\n", encoding="utf-8")
    assert project.nightly(D("2025-03-13")).success
    ids = dict(project.query("SELECT source_customer_id, customer_id FROM core.customer_identity "
                             "WHERE source_customer_id IN ('C1', 'C2', 'C6')"))
    assert ids["C1"] == person and ids["C2"] == new and ids["C6"] in (person, new)
    assert project.query("SELECT * FROM meta.customer_merges ORDER BY ALL") == merges
