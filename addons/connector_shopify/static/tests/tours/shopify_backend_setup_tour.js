import { registry } from "@web/core/registry";

// An administrator connects a Shopify store: creates its backend, tests the
// connection, maps a tax and a location, registers the webhooks. The test
// (tests/test_ui.py) runs a simulated store and checks what was saved.
registry.category("web_tour.tours").add("connector_shopify_backend_setup", {
    steps: () => [
        {
            content: "The app opens on the overview",
            trigger: ".o_connector_overview",
        },
        {
            content: "Configuration",
            trigger: ".o_main_navbar [data-menu-xmlid='connector_base.menu_connector_configuration']",
            run: "click",
        },
        {
            content: "Backends",
            trigger: ".dropdown-item[data-menu-xmlid='connector_base.menu_connector_backends']",
            run: "click",
        },
        {
            content: "A new backend",
            trigger: ".o_list_button_add",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=name] input",
            run: "edit Flagship store",
        },
        {
            trigger: ".o_field_widget[name=backend_type] .o_select_menu_toggler",
            run: "click",
        },
        {
            trigger: ".o_select_menu_item:contains('Shopify')",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=shopify_shop_domain] input",
            run: "edit retail-sync-test.myshopify.com",
        },
        {
            trigger: ".o_field_widget[name=api_token] input",
            run: "edit shpat_test_token_0123456789",
        },
        {
            trigger: ".o_field_widget[name=webhook_secret] input",
            run: "edit shopify-test-webhook-secret",
        },
        {
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_breadcrumb .active:contains('Flagship store')",
        },
        {
            trigger: ".o_form_saved",
        },
        {
            content: "Test the connection, in the Connection actions",
            trigger: "button[name=action_test_connection]",
            run: "click",
        },
        {
            trigger: ".o_notification:contains('Connection works')",
        },
        {
            content: "List the store's locations",
            trigger: "button[name=action_shopify_import_locations]",
            run: "click",
        },
        {
            trigger: ".o_notebook_headers a[name='shopify_mappings']",
            run: "click",
        },
        {
            content: "The second location is not mapped yet: map it to the shop floor",
            trigger:
                ".o_field_widget[name=shopify_location_ids] .o_data_row:nth-child(2) .o_data_cell[name=location_id]",
            run: "click",
        },
        {
            trigger:
                ".o_field_widget[name=shopify_location_ids] .o_selected_row .o_field_widget[name=location_id] input",
            run: "edit Shop floor",
        },
        {
            trigger: ".o-autocomplete--dropdown-item:contains('Shop floor')",
            run: "click",
        },
        {
            content: "Map Shopify's 'VAT' at 20 % to an Odoo tax",
            trigger:
                ".o_field_widget[name=shopify_tax_mapping_ids] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            trigger:
                ".o_field_widget[name=shopify_tax_mapping_ids] .o_selected_row .o_field_widget[name=name] input",
            run: "edit VAT",
        },
        {
            trigger:
                ".o_field_widget[name=shopify_tax_mapping_ids] .o_selected_row .o_field_widget[name=rate] input",
            run: "edit 20",
        },
        {
            trigger:
                ".o_field_widget[name=shopify_tax_mapping_ids] .o_selected_row .o_field_widget[name=tax_id] input",
            run: "edit Tour VAT 20",
        },
        {
            trigger: ".o-autocomplete--dropdown-item:contains('Tour VAT 20')",
            run: "click",
        },
        {
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            trigger: ".o_form_saved",
        },
        {
            content: "The webhook address, whole, with its copy button",
            trigger:
                ".o_field_CopyClipboardChar[name=webhook_address]:contains('/connector/shopify/webhook') .o_clipboard_button",
        },
        {
            content: "Register the webhooks",
            trigger: "button[name=action_shopify_register_webhooks]",
            run: "click",
        },
        {
            trigger: ".o_notification:contains('Webhooks registered')",
        },
    ],
});
