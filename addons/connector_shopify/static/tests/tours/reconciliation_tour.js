import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_utils";

// A connector manager opens the open stock mismatches of the Shopify store
// and resolves one by pushing Odoo's quantity.
registry.category("web_tour.tours").add("connector_shopify_resolve_stock_mismatch", {
    url: "/odoo",
    steps: () => [
        stepUtils.showAppsMenuItem(),
        {
            trigger: ".o_app[data-menu-xmlid='connector_base.menu_connector_root']",
            content: "Open the Connectors app",
            run: "click",
        },
        {
            trigger: "button[data-menu-xmlid='connector_base.menu_connector_reconciliation']",
            content: "Reconciliation",
            run: "click",
        },
        {
            trigger: "[data-menu-xmlid='connector_base.menu_connector_reconciliation_mismatch']",
            content: "Mismatches: the open ones",
            run: "click",
        },
        {
            trigger: ".o_searchview_facet:contains('Open')",
        },
        {
            trigger: ".o_control_panel_actions .o_searchview_dropdown_toggler",
            content: "Open the filters",
            run: "click",
        },
        {
            trigger: ".o_filter_menu .dropdown-item:contains('Stock')",
            content: "Only the stock mismatches",
            run: "click",
        },
        {
            trigger: ".o_searchview_facet:contains('Stock')",
        },
        {
            trigger: ".o_list_view .o_data_row td[name='business_key']:contains(' @ ')",
            content: "Open the mismatch of a SKU at a location",
            run: "click",
        },
        {
            trigger: ".o_form_view .o_field_widget[name='fix_label']:contains('Push Odoo')",
        },
        {
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_fix']",
            content: "Push Odoo's quantity to Shopify",
            run: "click",
        },
        {
            trigger: ".o_form_view .o_field_widget[name='resolution']:contains('Push Odoo')",
            content: "The mismatch says how it was resolved",
        },
        {
            trigger: ".o_form_view .o_statusbar_status button[aria-checked='true']:contains('Resolved')",
        },
    ],
});
