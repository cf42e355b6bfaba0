/**
 * A support user works an exception: Connectors opens on the overview, the
 * Failed count of the backend's tile lists its failed events, the one of
 * partner 77 gives its reason (a contact tag Odoo does not have), the fix
 * (the tag created), the requeue. The test then runs the queued job as the
 * job runner would, and the second tour sees the tile clear and the event
 * done.
 */
import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_utils";

const TILE = ".o_kanban_record:contains('Test remote')";

function openOverview() {
    return [
        stepUtils.showAppsMenuItem(),
        {
            content: "Open the Connectors app",
            trigger: ".o_app[data-menu-xmlid='connector_base.menu_connector_root']",
            run: "click",
        },
        {
            content: "It opens on the overview, a tile per backend",
            trigger: `.o_kanban_view.o_connector_overview ${TILE}`,
        },
    ];
}

function openFailedFromOverview() {
    return [
        ...openOverview(),
        {
            content: "The backend's tile counts one failed event: open them",
            trigger: `${TILE} button.o_connector_failed.btn-danger:contains('1')`,
            run: "click",
        },
        {
            content: "The events of the backend are listed, filtered on Failed",
            trigger: ".o_list_view .o_searchview .o_facet_value:contains('Failed')",
        },
    ];
}

registry.category("web_tour.tours").add("connector_exceptions_fix_and_requeue", {
    url: "/odoo",
    steps: () => [
        ...openFailedFromOverview(),
        {
            content: "The reason shows in the row",
            trigger:
                ".o_data_row:contains('partner:77') td[name=error_message]:contains('The contact tag Gold does not exist')",
        },
        {
            content: "Open the failed event",
            trigger: ".o_data_row:contains('partner:77') td[name=topic]",
            run: "click",
        },
        {
            content: "Read the reason on the event",
            trigger:
                ".o_form_view .alert-danger:contains('Cannot be applied in Odoo'):contains('create it, then requeue')",
        },
        {
            content: "Fix the cause: open the contact tags",
            trigger: ".o_form_view .o_statusbar_status",
            run: "goToUrl /odoo/action-base.action_partner_category_form",
            expectUnloadPage: true,
        },
        {
            content: "Create a tag",
            trigger: ".o_list_view .o_list_button_add",
            run: "click",
        },
        {
            content: "Name it as the reason says",
            trigger: ".o_data_row.o_selected_row [name=name] input",
            run: "edit Gold",
        },
        {
            content: "Save the tag",
            trigger: ".o_list_button_save",
            run: "click",
        },
        {
            content: "The tag is saved",
            trigger: ".o_data_row:not(.o_selected_row) td[name=name]:contains('Gold')",
        },
        ...openFailedFromOverview(),
        {
            content: "Open the failed event again",
            trigger: ".o_data_row:contains('partner:77') td[name=topic]",
            run: "click",
        },
        {
            content: "Requeue it",
            trigger: ".o_form_view .o_form_statusbar button[name=action_requeue]",
            run: "click",
        },
        {
            content: "It is queued: the error is gone",
            trigger:
                ".o_form_view:not(:has(.alert-danger)) .o_statusbar_status .o_arrow_button_current[data-value=queued]",
        },
    ],
});

registry.category("web_tour.tours").add("connector_exceptions_done", {
    url: "/odoo",
    steps: () => [
        ...openOverview(),
        {
            content: "The backend's tile counts no failed event any more",
            trigger: `${TILE} button.o_connector_failed.btn-secondary:contains('0')`,
        },
        {
            content: "Open Connectors > Exceptions",
            trigger: ".o_main_navbar [data-menu-xmlid='connector_base.menu_connector_exceptions_root']",
            run: "click",
        },
        {
            content: "Incoming events",
            trigger: "[data-menu-xmlid='connector_base.menu_connector_exceptions']",
            run: "click",
        },
        {
            content: "Nothing left to fix",
            trigger: ".o_view_nocontent:contains('Nothing to fix')",
        },
        {
            content: "Open Connectors > Events",
            trigger: ".o_main_navbar [data-menu-xmlid='connector_base.menu_connector_events']",
            run: "click",
        },
        {
            content: "Open the event of partner 77",
            trigger: ".o_data_row:contains('partner:77') td[name=topic]",
            run: "click",
        },
        {
            content: "It is done, and made the contact",
            trigger:
                ".o_form_view:has(.o_arrow_button_current[data-value=done]) .oe_stat_button:contains('Partner 77')",
        },
    ],
});
