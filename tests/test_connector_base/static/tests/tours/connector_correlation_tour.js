import { registry } from "@web/core/registry";

// Support follows a key from the menu: the timeline lists the pending
// change and the job that will send it; a row opens what it shows.
registry.category("web_tour.tours").add("connector_correlation_tour", {
    url: "/odoo/action-connector_base.action_connector_correlation",
    steps: () => [
        {
            trigger: ".o_field_widget[name=key] input",
            run: "edit score:77",
        },
        {
            trigger: "button[name=action_search]",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=summary]:contains(outbound calls: 1)",
        },
        {
            trigger: ".o_data_row:contains(send partner.score):contains(Pending)",
        },
        {
            trigger: ".o_data_row:contains(score:77) button[name=action_open]",
            run: "click",
        },
        {
            trigger: ".o_form_view .o_field_widget[name=coalescing_key]:contains(score:77)",
        },
    ],
});

// From an event's form: its Timeline button lists the event about the same key.
registry.category("web_tour.tours").add("connector_correlation_event_tour", {
    url: "/odoo/action-connector_base.action_connector_event",
    steps: () => [
        {
            trigger: ".o_data_row .o_data_cell:contains(partner:88)",
            run: "click",
        },
        {
            trigger: ".o_form_view button[name=action_follow]",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=key] input:value(partner:88)",
        },
        {
            trigger: ".o_data_row:contains(partner.upsert received):contains(Received)",
        },
    ],
});
