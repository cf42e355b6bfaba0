"""Events the framework skipped as stale were stored as *ignored*, like those
a person ignored; they get their own state, *stale*.

A person's ignore always leaves an ``ignore`` line as the last line of the
event's audit trail; an event skipped as stale was last received, requeued or
replayed: its last audit line, if any, is not an ``ignore``.
"""


def migrate(cr, version):
    cr.execute(
        """
        UPDATE connector_event event
           SET state = 'stale'
         WHERE event.state = 'ignored'
           AND COALESCE(
                   (SELECT audit.action
                      FROM connector_event_audit audit
                     WHERE audit.event_id = event.id
                     ORDER BY audit.id DESC
                     LIMIT 1),
                   ''
               ) != 'ignore'
        """
    )
