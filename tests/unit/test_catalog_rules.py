"""Catalog rules: item matching, what a provider would refuse, supplier lookup, account roles."""

from __future__ import annotations

from decimal import Decimal

from shared.domain.catalog import (
    Account,
    AccountKind,
    Component,
    Product,
    ProviderItem,
    Role,
    Supplier,
    account_problem,
    export_settings_problems,
    find_supplier,
    match_items,
    product_from_item,
    refusal_in_provider,
)


def item(item_id: str, sku: str | None, name: str = "", active: bool = True) -> ProviderItem:
    return ProviderItem(
        provider="qbo",
        item_id=item_id,
        name=name or f"Item {item_id}",
        sku=sku,
        kind="inventory",
        active=active,
    )


def product(product_id: str, sku: str, link: str | None = None, name: str = "Part") -> Product:
    return Product(product_id=product_id, sku=sku, name=name, provider_links={"qbo": link} if link else {})


def test_a_link_by_item_id_survives_a_changed_sku() -> None:
    matching = match_items("qbo", [item("7", "NEW-SKU")], [product("p1", "OLD-SKU", link="7")])
    assert [(m.product_id, m.item_id, m.by) for m in matching.matches] == [("p1", "7", "link")]


def test_unlinked_products_match_one_active_item_by_sku_ignoring_case_and_spaces() -> None:
    matching = match_items(
        "qbo", [item("1", "ab-1 "), item("2", "AB-1", active=False), item("3", "CD")], [product("p1", "AB-1")]
    )
    assert [(m.product_id, m.item_id, m.by) for m in matching.matches] == [("p1", "1", "sku")]
    assert matching.unmatched_items == ("3",)


def test_duplicate_skus_and_missing_skus_are_skipped_with_reasons() -> None:
    matching = match_items(
        "qbo", [item("1", "X"), item("2", "x"), item("3", None, name="Labour")], [product("p1", "X")]
    )
    assert matching.matches == ()
    assert [(s.product_id, s.reason) for s in matching.unmatched_products] == [
        ("p1", "several items in QuickBooks Online have its SKU")
    ]
    reasons = {s.item_id: s.reason for s in matching.skipped}
    assert reasons["1"] == "duplicate SKU 'X' in QuickBooks Online (items 1, 2)"
    assert reasons["2"] == "duplicate SKU 'x' in QuickBooks Online (items 1, 2)"
    assert reasons["3"] == "no SKU in QuickBooks Online, so it can't be matched to a product"
    assert matching.unmatched_items == ()


def test_an_item_already_linked_is_not_taken_by_a_second_product_with_its_sku() -> None:
    matching = match_items("qbo", [item("1", "X")], [product("p1", "X", link="1"), product("p2", "X")])
    assert [m.product_id for m in matching.matches] == ["p1"]
    assert [(s.product_id, s.reason) for s in matching.unmatched_products] == [
        ("p2", "the QuickBooks Online item with its SKU is linked to another product")
    ]


def test_products_without_an_item_say_whether_the_provider_could_hold_one() -> None:
    xero_item = ProviderItem(provider="xero", item_id="i1", name="Widget", sku="W-1", kind="non_inventory")
    matching = match_items("xero", [xero_item], [product("p1", "W-2"), product("p2", "LONG-" + "9" * 30)])
    assert {s.product_id: s.reason for s in matching.unmatched_products} == {
        "p1": "no active item in Xero has its SKU",
        "p2": "Xero can't hold an item for it: the SKU is longer than Xero's 30-character item code",
    }
    qbo = match_items("qbo", [], [product("p3", "K-1", name="Kits: oak")])
    assert qbo.unmatched_products[0].reason == (
        "QuickBooks Online can't hold an item for it: "
        "QuickBooks Online refuses item names containing ':' or '\\'"
    )


def test_providers_refuse_long_xero_codes_and_qbo_names_with_colon_or_backslash() -> None:
    assert refusal_in_provider("xero", product("p", "A" * 30)) is None
    assert "30-character" in (refusal_in_provider("xero", product("p", "A" * 31)) or "")
    assert refusal_in_provider("qbo", product("p", "A" * 31)) is None
    assert "':' or '\\'" in (refusal_in_provider("qbo", product("p", "S", name="Kits: oak")) or "")
    assert refusal_in_provider("qbo", product("p", "S", name="Kit\\oak")) is not None
    assert (
        refusal_in_provider("qbo", product("p", "  "))
        == "the product has no SKU to match or create an item by"
    )


def test_a_bundle_becomes_a_kit_of_the_products_its_components_are() -> None:
    bundle = ProviderItem(
        provider="qbo",
        item_id="11",
        name="Pair",
        sku="KIT",
        kind="bundle",
        unit_cost=Decimal("3.10"),
        components=(Component(ref="5", quantity=Decimal(2)), Component(ref="9", quantity=Decimal(1))),
    )
    kit = product_from_item(bundle, "p-kit", {"5": "p-5"})
    assert (kit.type, kit.unit_cost, kit.provider_links) == ("kit", Decimal("3.10"), {"qbo": "11"})
    assert kit.components == (Component(ref="p-5", quantity=Decimal(2)),)


def supplier(supplier_id: str, name: str, email: str = "", active: bool = True) -> Supplier:
    return Supplier(provider="xero", supplier_id=supplier_id, name=name, email=email, active=active)


def test_receiving_finds_suppliers_by_id_then_email_then_exact_name() -> None:
    suppliers = [
        supplier("1", "Acme Metals", "ap@acme.test"),
        supplier("2", "Bolt Co", "AP@bolt.test"),
        supplier("3", "Old Acme", "old@acme.test", active=False),
    ]
    assert find_supplier(suppliers, supplier_id="1", email="ap@bolt.test").supplier_id == "1"  # type: ignore[union-attr]
    assert find_supplier(suppliers, supplier_id="404", email=" ap@BOLT.test").supplier_id == "2"  # type: ignore[union-attr]
    assert find_supplier(suppliers, email="none@x.test", name="Acme Metals").supplier_id == "1"  # type: ignore[union-attr]
    assert find_supplier(suppliers, name="acme metals") is None  # the name must be exact
    assert find_supplier(suppliers, supplier_id="3", email="old@acme.test") is None  # archived ones never


def account(
    account_id: str,
    kind: AccountKind,
    active: bool = True,
    tracked: bool = False,
    type_: str = "X",
    system: str = "",
) -> Account:
    return Account(
        provider="xero",
        account_id=account_id,
        code=account_id,
        name=f"Acct {account_id}",
        type=type_,
        kind=kind,
        active=active,
        tracked_inventory=tracked,
        system_account=system,
    )


CHART = {
    a.account_id: a
    for a in (
        account("100", "asset"),
        account("200", "liability"),
        account("300", "cogs"),
        account("400", "expense"),
        account("500", "revenue"),
        account("600", "asset", active=False),
        account("700", "asset", tracked=True),
        account("800", "equity"),
        account("810", "equity", system="RETAINEDEARNINGS"),
        account("090", "asset", type_="BANK"),
    )
}


def test_each_role_accepts_only_accounts_of_a_sensible_kind() -> None:
    assert account_problem("build_debit", "100", CHART, journal=True) is None
    assert account_problem("build_credit", "300", CHART, journal=True) is None
    assert account_problem("receiving_credit", "200", CHART, journal=True) is None
    assert account_problem("waste", "400", CHART, journal=True) is None
    assert account_problem("adjustment", "800", CHART, journal=False) is None
    assert account_problem("cogs", "400", CHART, journal=True) == (
        "'400 Acct 400' is an expense account; choose a cost of goods sold account"
    )
    assert account_problem("waste", "500", CHART, journal=True) == (
        "'500 Acct 500' is a revenue account; choose a cost of goods sold or expense account"
    )
    assert (
        account_problem("receiving_debit", "600", CHART, journal=True)
        == "'600 Acct 600' is archived or inactive"
    )
    assert account_problem("receiving_debit", "999", CHART, journal=True) == (
        "no account '999' in the synced chart of accounts"
    )
    assert "manual journals can't post" in (account_problem("build_debit", "700", CHART, journal=True) or "")


def test_xero_journals_refuse_retained_earnings_and_bank_accounts() -> None:
    """Xero's Manual Journals page: retained earnings and bank accounts are reserved (a 400 error)."""
    assert account_problem("adjustment", "810", CHART, journal=True) == (
        "'810 Acct 810' is Xero's Retained Earnings system account (RETAINEDEARNINGS), which manual journals "
        "can't post to; choose a cost of goods sold, expense or equity account"
    )
    assert account_problem("adjustment", "810", CHART, journal=False) is None
    assert account_problem("build_debit", "090", CHART, journal=True) == (
        "'090 Acct 090' is a bank account, which Xero's manual journals can't post to; "
        "choose an asset account (finished goods)"
    )


def test_settings_problems_name_each_field_and_follow_the_mode() -> None:
    accounts: dict[Role, str | None] = {
        "build_debit": "100",
        "build_credit": "100",
        "receiving_debit": "100",
        "receiving_credit": "200",
        "waste": "400",
        "cogs": "300",
    }
    assert export_settings_problems("qbo", "journals", accounts, CHART) == []
    assert export_settings_problems("qbo", "inventory_adjustments", accounts, CHART) == [
        ("accounts.adjustment", "choose an account")
    ]
    wrong: dict[Role, str | None] = {**accounts, "waste": None, "adjustment": "300"}
    assert [field for field, _ in export_settings_problems("qbo", "journals", wrong, CHART)] == [
        "accounts.waste",
        "accounts.adjustment",
    ]
    assert export_settings_problems("xero", "inventory_adjustments", accounts, CHART)[0][0] == "mode"


def test_a_switch_of_company_sets_the_links_aside_and_switching_back_brings_them_back() -> None:
    product = Product(product_id="p1", sku="FG-1", name="Bracket", provider_links={"qbo": "5", "xero": "X-1"})
    second = product.with_company("qbo", "realm-a", "realm-b")
    assert second.provider_links == {"xero": "X-1"}  # the other provider's link is untouched
    assert second.former_links == {"qbo:realm-a": "5"}
    linked = second.model_copy(update={"provider_links": {**second.provider_links, "qbo": "1"}})  # a sync
    back = linked.with_company("qbo", "realm-b", "realm-a")
    assert back.provider_links == {"xero": "X-1", "qbo": "5"}
    assert back.former_links == {"qbo:realm-b": "1"}
    third = back.with_company("qbo", "realm-a", "realm-c")  # a company never linked: no link
    assert third.provider_links == {"xero": "X-1"}
    assert third.former_links == {"qbo:realm-b": "1", "qbo:realm-a": "5"}
    # a switch finished again after its process died part way changes nothing more
    assert back.with_company("qbo", "realm-b", "realm-a") == back
