"""File imports through the resolvers and the job: formats, the status machine, resuming."""

from pim.runtime import Runtime
from resolvers import imports, products
from tests.conftest import MakeKey
from tests.jobs_helper import run_jobs

CSV = (
    "EAN;Titre;Prix HT;Prix TTC;Marque;Poids;Stock\n"
    "3760000000019;Chaise;5,00;9,99;Acme;1,5;12\n"
    "3760000000026;Table;50,00;99,00;Acme;10;3\n"
)


async def test_create_job_imports_a_csv(runtime: Runtime, make_key: MakeKey) -> None:
    key = await make_key()
    caller = key.caller()
    async with runtime.db.transaction() as session:
        job = await imports.create_job(
            session, caller, file_name="catalog.csv", content=CSV.encode(), supplier_code=None
        )
    assert job.status == "analyzing"
    await run_jobs(runtime)
    async with runtime.db.transaction() as session:
        done = await imports.get_job(session, caller, job_id=job.id)
        page = await products.list_products(session, caller, limit=10)
    assert (done.status, done.total_rows, done.products_created, done.failed_rows) == (
        "completed",
        2,
        2,
        0,
    )
    assert page.total == 2
