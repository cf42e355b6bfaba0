import { registry } from "@web/core/registry";

// A warehouse user holds a delivery released to the 3PL from its form: the
// form says it is on hold at the 3PL and offers to release the hold.
registry.category("web_tour.tours").add("connector_3pl_hold_delivery", {
    steps: () => [
        {
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_tpl_hold']",
            content: "Hold it at the 3PL",
            run: "click",
        },
        {
            trigger: ".o_form_view .alert-warning:contains('On hold at the 3PL')",
            content: "The form says the 3PL keeps it back",
        },
        {
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_tpl_release_hold']",
            content: "The hold can be released from here",
        },
        {
            trigger: ".o-mail-Message-body:contains('Hold asked at the 3PL')",
            content: "The chatter says who asked",
        },
    ],
});
